//! The seam between a child's setup sequence and the kernel: one method
//! per operation the sequence performs, so that the sequence (which step
//! comes when, what a failure reports, what is never reached after one)
//! is tested without root against a recording double, and runs for real
//! against [`HostKernel`](super::host_kernel::HostKernel).
//!
//! The sequence functions are generic over [`Kernel`]: the child, a copy
//! of the single-threaded spawner, calls the host's methods directly, with
//! no allocation for the seam and nothing shared with other threads.
//!
//! A method that is one system call returns its errno, and the sequence
//! names the step and path it reports. A method that is several calls (a
//! masked path, `pivot_root` and the old root's detach, a device node...)
//! returns the failure its existing helper describes.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::child::Step;
use crate::sys::hooks::HookError;
use crate::sys::mount::{MountResult, Target};
use crate::sys::plan::{CapabilityPlan, ChildReport, DevicePlan, HookPlan, NsKind};
use crate::sys::seccomp::{SeccompError, SeccompProgram};
use crate::sys::tree_copy::{TopAttributes, TreeCopyError};
use crate::sys::tty::{Pty, TtyError, WindowSize};

/// The kernel operations a child performs between `clone3` and `execve`.
pub(super) trait Kernel {
    // The child and its supervisor.

    /// Arms SIGKILL as the parent death signal.
    fn set_parent_death_signal(&self) -> Result<(), Errno>;
    /// The parent's pid (0 when it is outside this pid namespace).
    fn parent_pid(&self) -> i32;
    /// True when the supervisor has exited (seen through its pidfd).
    fn supervisor_gone(&self) -> bool;
    /// This process's pid in its own pid namespace.
    fn pid(&self) -> i32;
    /// This process's pid as the host's `/proc` names it, while that
    /// `/proc` is still mounted.
    fn host_pid(&self) -> Option<i32>;
    /// Writes `report` on the status pipe.
    fn report(&self, status: BorrowedFd<'_>, report: &ChildReport);
    /// `read(2)` of `fd` into `buf`.
    fn read(&self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Runs OCI hooks in order with `state` on their stdin.
    fn run_hooks(&self, hooks: &[HookPlan], state: &[u8]) -> Result<(), HookError>;

    // Namespaces, cgroups, names.

    /// `setns(fd, kind)`.
    fn setns(&self, fd: BorrowedFd<'_>, kind: NsKind) -> Result<(), Errno>;
    /// `unshare` of a new namespace of `kind`.
    fn unshare(&self, kind: NsKind) -> Result<(), Errno>;
    /// Moves this process into a cgroup: writes "0" to its `cgroup.procs`.
    fn join_cgroup(&self, procs: BorrowedFd<'_>) -> Result<(), Errno>;
    /// `sethostname`.
    fn sethostname(&self, name: &str) -> Result<(), Errno>;
    /// `setdomainname`.
    fn setdomainname(&self, name: &str) -> Result<(), Errno>;
    /// Brings the loopback interface up.
    fn loopback_up(&self) -> Step;

    // The root filesystem.

    /// `mount(2)`; `path` names the mount in a failure.
    fn mount(
        &self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
        path: &str,
    ) -> MountResult<()>;
    /// Makes the mount holding `path` private if it is shared.
    fn make_parent_mount_private(&self, path: &str) -> MountResult<()>;
    /// Opens directory `path` `O_PATH | O_DIRECTORY | O_CLOEXEC`.
    fn open_directory(&self, path: &str) -> Result<OwnedFd, Errno>;
    /// Opens `path` inside `root` without leaving it.
    fn open_in_root(&self, root: BorrowedFd<'_>, path: &str, flags: i32) -> Result<OwnedFd, Errno>;
    /// Creates `path` (and its parents) inside `root` and opens it.
    fn create_in_root(
        &self,
        root: BorrowedFd<'_>,
        path: &str,
        target: Target,
    ) -> MountResult<OwnedFd>;
    /// True when `path` (a bind mount's source, on the host) is a directory.
    fn is_directory(&self, path: &str) -> Result<bool, Errno>;
    /// `mount_setattr` on `fd`; `path` names it in a failure.
    fn set_mount_attributes(
        &self,
        fd: BorrowedFd<'_>,
        recursive: bool,
        set: u64,
        clear: u64,
        path: &str,
    ) -> MountResult<()>;
    /// Copies directory `from` into directory `to` (tmpcopyup).
    fn copy_directory(
        &self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        top: TopAttributes,
    ) -> Result<(), TreeCopyError>;
    /// Creates the device node `device` under `root`.
    fn make_device(&self, root: BorrowedFd<'_>, device: &DevicePlan) -> MountResult<()>;
    /// Creates the symlink `link -> target` under `root`.
    fn make_symlink(&self, root: BorrowedFd<'_>, target: &str, link: &str) -> MountResult<()>;
    /// `chdir(2)`.
    fn chdir(&self, path: &CStr) -> Result<(), Errno>;
    /// `fchdir(2)`.
    fn fchdir(&self, fd: BorrowedFd<'_>) -> Result<(), Errno>;
    /// `chroot(2)`.
    fn chroot(&self, path: &str) -> Result<(), Errno>;
    /// `pivot_root` into the working directory, then detaches the old root.
    fn pivot_root(&self) -> MountResult<()>;
    /// Moves the working directory over `/` and chroots into it.
    fn move_root(&self) -> MountResult<()>;
    /// Writes `value` to the `/proc/sys` file of the dotted `key`.
    fn write_sysctl(&self, key: &str, value: &str) -> io::Result<()>;
    /// Hides `path` (inside the current root).
    fn mask_path(&self, path: &str) -> MountResult<()>;
    /// Makes `path` (inside the current root) read-only.
    fn make_readonly(&self, path: &str) -> MountResult<()>;
    /// Closes every descriptor but `keep`, holding 0..2 with placeholders.
    fn close_all_except(&self, keep: &[RawFd]) -> Step;

    // The process.

    /// `setrlimit(resource, {soft, hard})`.
    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno>;
    /// Writes `/proc/self/oom_score_adj`.
    fn write_oom_score_adj(&self, adj: i32) -> io::Result<()>;
    /// True when the working directory lies inside this process's root
    /// (the kernel's getcwd starts with `/`).
    fn cwd_reachable(&self) -> Result<bool, Errno>;
    /// `access(path, X_OK)`.
    fn access_executable(&self, path: &CStr) -> Result<(), Errno>;
    /// The highest capability number this kernel knows.
    fn last_capability(&self) -> u32;
    /// Drops `cap` from the bounding set.
    fn drop_bounding_capability(&self, cap: u32) -> Result<(), Errno>;
    /// `PR_SET_KEEPCAPS`.
    fn set_keepcaps(&self, keep: bool) -> Result<(), Errno>;
    /// `setgroups(2)`.
    fn setgroups(&self, gids: &[u32]) -> Result<(), Errno>;
    /// `setresgid(gid, gid, gid)`.
    fn setresgid(&self, gid: u32) -> Result<(), Errno>;
    /// `setresuid(uid, uid, uid)`.
    fn setresuid(&self, uid: u32) -> Result<(), Errno>;
    /// `capset` of the effective, permitted and inheritable sets.
    fn capset(&self, caps: &CapabilityPlan) -> Result<(), Errno>;
    /// Clears the ambient set.
    fn clear_ambient_capabilities(&self) -> Result<(), Errno>;
    /// Raises `cap` in the ambient set.
    fn raise_ambient_capability(&self, cap: u32) -> Result<(), Errno>;
    /// Installs a seccomp filter.
    fn install_seccomp(&self, program: &SeccompProgram) -> Result<(), SeccompError>;
    /// `PR_SET_DUMPABLE`.
    fn set_dumpable(&self, dumpable: bool) -> Result<(), Errno>;
    /// `PR_SET_NO_NEW_PRIVS`.
    fn set_no_new_privs(&self) -> Result<(), Errno>;
    /// `umask(2)`.
    fn umask(&self, mask: u32);
    /// Unblocks every signal of this thread.
    fn unblock_signals(&self) -> Result<(), Errno>;
    /// Sets SIGPIPE's disposition to its default.
    fn default_sigpipe(&self) -> Result<(), Errno>;
    /// `execve(2)`; returns only on failure, with the errno.
    fn execve(&self, program: &CStr, argv: &[CString], envp: &[CString]) -> Errno;

    // Standard streams.

    /// `setsid(2)`.
    fn setsid(&self) -> Result<(), Errno>;
    /// Duplicates `fd` to a close-on-exec descriptor above 2.
    fn dup_above_stdio(&self, fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno>;
    /// `dup2(fd, target)`: `target` has no close-on-exec.
    fn dup2(&self, fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno>;
    /// Opens a new pty pair from this root's `/dev/ptmx`.
    fn open_pty(&self, size: Option<WindowSize>) -> Result<Pty, TtyError>;
    /// Sends `fd` over the Unix socket `channel`, with `message`.
    fn send_fd(
        &self,
        channel: BorrowedFd<'_>,
        message: &[u8],
        fd: BorrowedFd<'_>,
    ) -> io::Result<()>;
    /// Sets the window size of terminal `fd`.
    fn set_window_size(&self, fd: BorrowedFd<'_>, size: WindowSize) -> Result<(), TtyError>;
    /// Makes `slave` the controlling terminal and the three streams.
    fn become_controlling_terminal(&self, slave: BorrowedFd<'_>) -> Result<(), TtyError>;
}
