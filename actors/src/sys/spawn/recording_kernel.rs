//! A [`Kernel`] for tests: it performs nothing, records every call as a
//! [`Call`], and fails the first call a rule picks with the errno given.
//!
//! Methods that return a descriptor return one of `/dev/null` (opened
//! `O_PATH`), so that the sequence can go on without root; the queries
//! (`parent_pid`, `pid`, `host_pid`, `last_capability`) answer from
//! fields and are not recorded. The double cannot replace the process:
//! its `execve` returns, with [`RecordingKernel::EXECVE_RETURNS`] unless
//! a rule fails it, and the sequence reports that as a failed exec.

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;

use super::child::{errno_failure, Step};
use super::kernel::Kernel;
use crate::sys::hooks::HookError;
use crate::sys::mount::{MountFailure, MountResult, Target};
use crate::sys::plan::{CapabilityPlan, ChildReport, DevicePlan, HookPlan, NsKind};
use crate::sys::seccomp::{SeccompError, SeccompProgram};
use crate::sys::tree_copy::{TopAttributes, TreeCopyError};
use crate::sys::tty::{Pty, TtyError, WindowSize};

/// One recorded call (descriptors by number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    SetParentDeathSignal,
    Report(ChildReport),
    Read(RawFd),
    RunHooks(Vec<String>),
    Setns(NsKind, RawFd),
    Unshare(NsKind),
    JoinCgroup(RawFd),
    Sethostname(String),
    Setdomainname(String),
    LoopbackUp,
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: u64,
        data: Option<String>,
        path: String,
    },
    MakeParentMountPrivate(String),
    OpenDirectory(String),
    OpenInRoot(String, i32),
    CreateInRoot(String, Target),
    IsDirectory(String),
    SetMountAttributes {
        recursive: bool,
        set: u64,
        clear: u64,
        path: String,
    },
    CopyDirectory,
    MakeDevice(String),
    MakeSymlink(String, String),
    Chdir(String),
    Fchdir(RawFd),
    Chroot(String),
    PivotRoot,
    MoveRoot,
    WriteSysctl(String, String),
    MaskPath(String),
    MakeReadonly(String),
    CloseAllExcept(Vec<RawFd>),
    Setrlimit(u32, u64, u64),
    WriteOomScoreAdj(i32),
    CwdReachable,
    AccessExecutable(String),
    DropBoundingCapability(u32),
    SetKeepcaps(bool),
    Setgroups(Vec<u32>),
    Setresgid(u32),
    Setresuid(u32),
    Capset(CapabilityPlan),
    ClearAmbientCapabilities,
    RaiseAmbientCapability(u32),
    InstallSeccomp,
    SetDumpable(bool),
    SetNoNewPrivs,
    Umask(u32),
    UnblockSignals,
    DefaultSigpipe,
    Execve {
        program: String,
        argv: Vec<String>,
        envp: Vec<String>,
    },
    Setsid,
    DupAboveStdio(RawFd),
    Dup2(RawFd, RawFd),
    OpenPty,
    SendFd(RawFd),
    SetWindowSize(RawFd),
    BecomeControllingTerminal(RawFd),
}

type Rule = Box<dyn Fn(&Call) -> bool>;

/// Which calls fail, with what, and whether only the first.
struct Failing {
    rule: Rule,
    errno: Errno,
    once: bool,
}

/// The recording double.
pub(super) struct RecordingKernel {
    calls: RefCell<Vec<Call>>,
    fail: RefCell<Option<Failing>>,
    /// What `parent_pid` answers.
    pub(super) parent: Cell<i32>,
    /// What `supervisor_gone` answers.
    pub(super) supervisor_gone: Cell<bool>,
    /// What `read` answers (a gate: 1, the byte; 0, closed).
    pub(super) read_returns: Cell<usize>,
    /// What `cwd_reachable` answers.
    pub(super) cwd_reachable: Cell<bool>,
    /// What `last_capability` answers.
    pub(super) last_capability: Cell<u32>,
}

impl Default for RecordingKernel {
    fn default() -> Self {
        RecordingKernel {
            calls: RefCell::new(Vec::new()),
            fail: RefCell::new(None),
            parent: Cell::new(RecordingKernel::SUPERVISOR),
            supervisor_gone: Cell::new(false),
            read_returns: Cell::new(1),
            cwd_reachable: Cell::new(true),
            last_capability: Cell::new(3),
        }
    }
}

impl RecordingKernel {
    /// The parent's pid it answers by default.
    pub(super) const SUPERVISOR: i32 = 4242;
    /// This process's pid it answers.
    pub(super) const PID: i32 = 1;
    /// The host pid it answers.
    pub(super) const HOST_PID: i32 = 31337;
    /// What its `execve` returns when no rule fails it.
    pub(super) const EXECVE_RETURNS: Errno = Errno::ENOSYS;

    /// Fails the first call `rule` picks (it is recorded) with `errno`.
    pub(super) fn fail_when(&self, rule: impl Fn(&Call) -> bool + 'static, errno: Errno) {
        *self.fail.borrow_mut() = Some(Failing {
            rule: Box::new(rule),
            errno,
            once: true,
        });
    }

    /// Fails every call `rule` picks with `errno`.
    pub(super) fn fail_every(&self, rule: impl Fn(&Call) -> bool + 'static, errno: Errno) {
        *self.fail.borrow_mut() = Some(Failing {
            rule: Box::new(rule),
            errno,
            once: false,
        });
    }

    /// Fails the first call equal to `call` with `errno`.
    pub(super) fn fail_at(&self, call: Call, errno: Errno) {
        self.fail_when(move |c| *c == call, errno);
    }

    /// The calls so far, in order.
    pub(super) fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// Records `call`; the rule's errno if it picks it.
    fn call(&self, call: Call) -> Result<(), Errno> {
        let mut fail = self.fail.borrow_mut();
        let picked = match fail.as_ref() {
            Some(f) if (f.rule)(&call) => Some((f.errno, f.once)),
            _ => None,
        };
        self.calls.borrow_mut().push(call);
        match picked {
            Some((errno, once)) => {
                if once {
                    *fail = None;
                }
                Err(errno)
            }
            None => Ok(()),
        }
    }

    fn mount_call(&self, call: Call, step: &'static str, path: &str) -> MountResult<()> {
        self.call(call).map_err(|errno| MountFailure {
            step,
            path: path.to_owned(),
            errno,
        })
    }

    fn io_call(&self, call: Call) -> io::Result<()> {
        self.call(call)
            .map_err(|e| io::Error::from_raw_os_error(e as i32))
    }
}

/// A descriptor that names nothing the test cares about.
pub(super) fn dev_null() -> OwnedFd {
    nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .expect("open /dev/null")
}

fn string(s: &CStr) -> String {
    s.to_string_lossy().into_owned()
}

impl Kernel for RecordingKernel {
    fn set_parent_death_signal(&self) -> Result<(), Errno> {
        self.call(Call::SetParentDeathSignal)
    }

    fn parent_pid(&self) -> i32 {
        self.parent.get()
    }

    fn supervisor_gone(&self) -> bool {
        self.supervisor_gone.get()
    }

    fn pid(&self) -> i32 {
        RecordingKernel::PID
    }

    fn host_pid(&self) -> Option<i32> {
        Some(RecordingKernel::HOST_PID)
    }

    fn report(&self, _status: BorrowedFd<'_>, report: &ChildReport) {
        let _ = self.call(Call::Report(report.clone()));
    }

    fn read(&self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
        self.call(Call::Read(fd.as_raw_fd()))?;
        Ok(self.read_returns.get().min(buf.len()))
    }

    fn run_hooks(&self, hooks: &[HookPlan], _state: &[u8]) -> Result<(), HookError> {
        let paths: Vec<String> = hooks.iter().map(|h| h.path.clone()).collect();
        let first = paths.first().cloned().unwrap_or_default();
        self.call(Call::RunHooks(paths))
            .map_err(|errno| HookError::Spawn {
                path: first,
                reason: errno.desc().to_owned(),
                errno: errno as i32,
            })
    }

    fn setns(&self, fd: BorrowedFd<'_>, kind: NsKind) -> Result<(), Errno> {
        self.call(Call::Setns(kind, fd.as_raw_fd()))
    }

    fn unshare(&self, kind: NsKind) -> Result<(), Errno> {
        self.call(Call::Unshare(kind))
    }

    fn join_cgroup(&self, procs: BorrowedFd<'_>) -> Result<(), Errno> {
        self.call(Call::JoinCgroup(procs.as_raw_fd()))
    }

    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        self.call(Call::Sethostname(name.to_owned()))
    }

    fn setdomainname(&self, name: &str) -> Result<(), Errno> {
        self.call(Call::Setdomainname(name.to_owned()))
    }

    fn loopback_up(&self) -> Step {
        self.call(Call::LoopbackUp)
            .map_err(|e| errno_failure("bring interface up", "lo", e))
    }

    fn mount(
        &self,
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: u64,
        data: Option<&str>,
        path: &str,
    ) -> MountResult<()> {
        let call = Call::Mount {
            source: source.map(str::to_owned),
            target: target.to_owned(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
            path: path.to_owned(),
        };
        self.mount_call(call, "mount", path)
    }

    fn make_parent_mount_private(&self, path: &str) -> MountResult<()> {
        self.mount_call(Call::MakeParentMountPrivate(path.to_owned()), "mount", path)
    }

    fn open_directory(&self, path: &str) -> Result<OwnedFd, Errno> {
        self.call(Call::OpenDirectory(path.to_owned()))?;
        Ok(dev_null())
    }

    fn open_in_root(
        &self,
        _root: BorrowedFd<'_>,
        path: &str,
        flags: i32,
    ) -> Result<OwnedFd, Errno> {
        self.call(Call::OpenInRoot(path.to_owned(), flags))?;
        Ok(dev_null())
    }

    fn create_in_root(
        &self,
        _root: BorrowedFd<'_>,
        path: &str,
        target: Target,
    ) -> MountResult<OwnedFd> {
        self.mount_call(
            Call::CreateInRoot(path.to_owned(), target),
            "create mount destination",
            path,
        )?;
        Ok(dev_null())
    }

    fn is_directory(&self, path: &str) -> Result<bool, Errno> {
        self.call(Call::IsDirectory(path.to_owned()))?;
        Ok(true)
    }

    fn set_mount_attributes(
        &self,
        _fd: BorrowedFd<'_>,
        recursive: bool,
        set: u64,
        clear: u64,
        path: &str,
    ) -> MountResult<()> {
        let call = Call::SetMountAttributes {
            recursive,
            set,
            clear,
            path: path.to_owned(),
        };
        self.mount_call(call, "mount_setattr", path)
    }

    fn copy_directory(
        &self,
        _from: BorrowedFd<'_>,
        _to: BorrowedFd<'_>,
        _top: TopAttributes,
    ) -> Result<(), TreeCopyError> {
        self.call(Call::CopyDirectory)
            .map_err(|errno| TreeCopyError {
                op: "copy",
                path: PathBuf::new(),
                errno,
            })
    }

    fn make_device(&self, _root: BorrowedFd<'_>, device: &DevicePlan) -> MountResult<()> {
        self.mount_call(Call::MakeDevice(device.path.clone()), "mknod", &device.path)
    }

    fn make_symlink(&self, _root: BorrowedFd<'_>, target: &str, link: &str) -> MountResult<()> {
        self.mount_call(
            Call::MakeSymlink(target.to_owned(), link.to_owned()),
            "symlink",
            link,
        )
    }

    fn chdir(&self, path: &CStr) -> Result<(), Errno> {
        self.call(Call::Chdir(string(path)))
    }

    fn fchdir(&self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        self.call(Call::Fchdir(fd.as_raw_fd()))
    }

    fn chroot(&self, path: &str) -> Result<(), Errno> {
        self.call(Call::Chroot(path.to_owned()))
    }

    fn pivot_root(&self) -> MountResult<()> {
        self.mount_call(Call::PivotRoot, "pivot_root", ".")
    }

    fn move_root(&self) -> MountResult<()> {
        self.mount_call(Call::MoveRoot, "mount", "/")
    }

    fn write_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        self.io_call(Call::WriteSysctl(key.to_owned(), value.to_owned()))
    }

    fn mask_path(&self, path: &str) -> MountResult<()> {
        self.mount_call(Call::MaskPath(path.to_owned()), "mount", path)
    }

    fn make_readonly(&self, path: &str) -> MountResult<()> {
        self.mount_call(Call::MakeReadonly(path.to_owned()), "mount_setattr", path)
    }

    fn close_all_except(&self, keep: &[RawFd]) -> Step {
        self.call(Call::CloseAllExcept(keep.to_vec()))
            .map_err(|e| errno_failure("close descriptors", "", e))
    }

    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
        self.call(Call::Setrlimit(resource, soft, hard))
    }

    fn write_oom_score_adj(&self, adj: i32) -> io::Result<()> {
        self.io_call(Call::WriteOomScoreAdj(adj))
    }

    fn cwd_reachable(&self) -> Result<bool, Errno> {
        self.call(Call::CwdReachable)?;
        Ok(self.cwd_reachable.get())
    }

    fn access_executable(&self, path: &CStr) -> Result<(), Errno> {
        self.call(Call::AccessExecutable(string(path)))
    }

    fn last_capability(&self) -> u32 {
        self.last_capability.get()
    }

    fn drop_bounding_capability(&self, cap: u32) -> Result<(), Errno> {
        self.call(Call::DropBoundingCapability(cap))
    }

    fn set_keepcaps(&self, keep: bool) -> Result<(), Errno> {
        self.call(Call::SetKeepcaps(keep))
    }

    fn setgroups(&self, gids: &[u32]) -> Result<(), Errno> {
        self.call(Call::Setgroups(gids.to_vec()))
    }

    fn setresgid(&self, gid: u32) -> Result<(), Errno> {
        self.call(Call::Setresgid(gid))
    }

    fn setresuid(&self, uid: u32) -> Result<(), Errno> {
        self.call(Call::Setresuid(uid))
    }

    fn capset(&self, caps: &CapabilityPlan) -> Result<(), Errno> {
        self.call(Call::Capset(*caps))
    }

    fn clear_ambient_capabilities(&self) -> Result<(), Errno> {
        self.call(Call::ClearAmbientCapabilities)
    }

    fn raise_ambient_capability(&self, cap: u32) -> Result<(), Errno> {
        self.call(Call::RaiseAmbientCapability(cap))
    }

    fn install_seccomp(&self, _program: &SeccompProgram) -> Result<(), SeccompError> {
        self.call(Call::InstallSeccomp)
            .map_err(|errno| SeccompError::Install { flags: 0, errno })
    }

    fn set_dumpable(&self, dumpable: bool) -> Result<(), Errno> {
        self.call(Call::SetDumpable(dumpable))
    }

    fn set_no_new_privs(&self) -> Result<(), Errno> {
        self.call(Call::SetNoNewPrivs)
    }

    fn umask(&self, mask: u32) {
        let _ = self.call(Call::Umask(mask));
    }

    fn unblock_signals(&self) -> Result<(), Errno> {
        self.call(Call::UnblockSignals)
    }

    fn default_sigpipe(&self) -> Result<(), Errno> {
        self.call(Call::DefaultSigpipe)
    }

    fn execve(&self, program: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
        let call = Call::Execve {
            program: string(program),
            argv: argv.iter().map(|a| string(a)).collect(),
            envp: envp.iter().map(|e| string(e)).collect(),
        };
        match self.call(call) {
            Ok(()) => RecordingKernel::EXECVE_RETURNS,
            Err(errno) => errno,
        }
    }

    fn setsid(&self) -> Result<(), Errno> {
        self.call(Call::Setsid)
    }

    fn dup_above_stdio(&self, fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
        self.call(Call::DupAboveStdio(fd.as_raw_fd()))?;
        Ok(dev_null())
    }

    fn dup2(&self, fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
        self.call(Call::Dup2(fd.as_raw_fd(), target))
    }

    fn open_pty(&self, _size: Option<WindowSize>) -> Result<Pty, TtyError> {
        self.call(Call::OpenPty)
            .map_err(|source| TtyError::Master { op: "open", source })?;
        Ok(Pty {
            master: dev_null(),
            slave: dev_null(),
        })
    }

    fn send_fd(
        &self,
        channel: BorrowedFd<'_>,
        _message: &[u8],
        _fd: BorrowedFd<'_>,
    ) -> io::Result<()> {
        self.io_call(Call::SendFd(channel.as_raw_fd()))
    }

    fn set_window_size(&self, fd: BorrowedFd<'_>, _size: WindowSize) -> Result<(), TtyError> {
        self.call(Call::SetWindowSize(fd.as_raw_fd()))
            .map_err(|source| TtyError::Terminal {
                op: "TIOCSWINSZ",
                fd: fd.as_raw_fd(),
                source,
            })
    }

    fn become_controlling_terminal(&self, slave: BorrowedFd<'_>) -> Result<(), TtyError> {
        self.call(Call::BecomeControllingTerminal(slave.as_raw_fd()))
            .map_err(|source| TtyError::ControllingTerminal {
                slave: slave.as_raw_fd(),
                step: "TIOCSCTTY",
                fd: slave.as_raw_fd(),
                source,
            })
    }
}
