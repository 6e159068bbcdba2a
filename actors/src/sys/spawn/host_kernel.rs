//! The [`Kernel`] a child really runs on: each method is the system call
//! (or the `sys` helper) the setup sequence made directly before it had a
//! seam. It holds no state, so the child, a copy of the single-threaded
//! spawner, shares nothing with other threads through it.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::child::{self, errno_failure, last_errno, Step};
use super::descriptors;
use super::kernel::Kernel;
use crate::sys::hooks::HookError;
use crate::sys::mount::{self, MountResult, Target};
use crate::sys::plan::{CapabilityPlan, ChildReport, DevicePlan, HookPlan, NsKind};
use crate::sys::seccomp::{SeccompError, SeccompProgram};
use crate::sys::tree_copy::{TopAttributes, TreeCopyError};
use crate::sys::tty::{Pty, TtyError, WindowSize};

/// The running kernel.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HostKernel;

impl Kernel for HostKernel {
    fn set_parent_death_signal(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
    }

    fn parent_pid(&self) -> i32 {
        nix::unistd::getppid().as_raw()
    }

    fn supervisor_gone(&self) -> bool {
        super::supervisor_gone()
    }

    fn pid(&self) -> i32 {
        nix::unistd::getpid().as_raw()
    }

    fn host_pid(&self) -> Option<i32> {
        std::fs::read_link("/proc/self")
            .ok()
            .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()))
    }

    fn report(&self, status: BorrowedFd<'_>, report: &ChildReport) {
        child::report(status.as_raw_fd(), report);
    }

    fn read(&self, fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
        nix::unistd::read(fd, buf)
    }

    fn run_hooks(&self, hooks: &[HookPlan], state: &[u8]) -> Result<(), HookError> {
        crate::sys::hooks::run_hooks(hooks, state)
    }

    fn setns(&self, fd: BorrowedFd<'_>, kind: NsKind) -> Result<(), Errno> {
        let flag = nix::sched::CloneFlags::from_bits_retain(kind.clone_flag() as libc::c_int);
        nix::sched::setns(fd, flag)
    }

    fn unshare(&self, kind: NsKind) -> Result<(), Errno> {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            kind.clone_flag() as libc::c_int
        ))
    }

    fn join_cgroup(&self, procs: BorrowedFd<'_>) -> Result<(), Errno> {
        // SAFETY: write of a static buffer to a live descriptor.
        if unsafe { libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn sethostname(&self, name: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(name)
    }

    fn setdomainname(&self, name: &str) -> Result<(), Errno> {
        // SAFETY: the pointer and length describe `name`'s bytes.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn loopback_up(&self) -> Step {
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| errno_failure("socket", "lo", e))?;
        // SAFETY: ifreq is plain data; zeroes are valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
        unsafe {
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
                return Err(last_errno("get interface flags", "lo"));
            }
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as i16;
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
                return Err(last_errno("bring interface up", "lo"));
            }
        }
        Ok(())
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
        mount::mount(source, target, fstype, flags, data, path)
    }

    fn make_parent_mount_private(&self, path: &str) -> MountResult<()> {
        mount::make_parent_mount_private(path)
    }

    fn open_directory(&self, path: &str) -> Result<OwnedFd, Errno> {
        nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    }

    fn open_in_root(&self, root: BorrowedFd<'_>, path: &str, flags: i32) -> Result<OwnedFd, Errno> {
        mount::open_in_root(root, path, flags)
    }

    fn create_in_root(
        &self,
        root: BorrowedFd<'_>,
        path: &str,
        target: Target,
    ) -> MountResult<OwnedFd> {
        mount::create_in_root(root, path, target)
    }

    fn is_directory(&self, path: &str) -> Result<bool, Errno> {
        std::fs::metadata(path)
            .map(|meta| meta.is_dir())
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    }

    fn set_mount_attributes(
        &self,
        fd: BorrowedFd<'_>,
        recursive: bool,
        set: u64,
        clear: u64,
        path: &str,
    ) -> MountResult<()> {
        mount::set_mount_attributes(fd, recursive, set, clear, path)
    }

    fn copy_directory(
        &self,
        from: BorrowedFd<'_>,
        to: BorrowedFd<'_>,
        top: TopAttributes,
    ) -> Result<(), TreeCopyError> {
        crate::sys::tree_copy::copy_directory(from, to, top)
    }

    fn make_device(&self, root: BorrowedFd<'_>, d: &DevicePlan) -> MountResult<()> {
        mount::make_device(
            root,
            &d.path,
            d.file_type,
            d.major,
            d.minor,
            d.mode,
            (d.uid, d.gid),
        )
    }

    fn make_symlink(&self, root: BorrowedFd<'_>, target: &str, link: &str) -> MountResult<()> {
        mount::make_symlink(root, target, link)
    }

    fn chdir(&self, path: &CStr) -> Result<(), Errno> {
        nix::unistd::chdir(path)
    }

    fn fchdir(&self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        nix::unistd::fchdir(fd)
    }

    fn chroot(&self, path: &str) -> Result<(), Errno> {
        nix::unistd::chroot(path)
    }

    fn pivot_root(&self) -> MountResult<()> {
        mount::pivot_into_cwd()
    }

    fn move_root(&self) -> MountResult<()> {
        mount::move_root_into_cwd()
    }

    fn write_sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        use std::io::Write;
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
    }

    fn mask_path(&self, path: &str) -> MountResult<()> {
        mount::mask_path(path)
    }

    fn make_readonly(&self, path: &str) -> MountResult<()> {
        mount::make_readonly(path)
    }

    fn close_all_except(&self, keep: &[RawFd]) -> Step {
        descriptors::close_all_except(keep)
    }

    fn setrlimit(&self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `limit` is a live rlimit.
        if unsafe { libc::setrlimit(resource as _, &limit) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn write_oom_score_adj(&self, adj: i32) -> io::Result<()> {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
    }

    fn cwd_reachable(&self) -> Result<bool, Errno> {
        let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let len = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
        if len < 0 {
            return Err(Errno::last());
        }
        Ok(buf.first() == Some(&b'/'))
    }

    fn access_executable(&self, path: &CStr) -> Result<(), Errno> {
        // SAFETY: a live C string.
        if unsafe { libc::access(path.as_ptr(), libc::X_OK) } == 0 {
            return Ok(());
        }
        Err(Errno::last())
    }

    fn last_capability(&self) -> u32 {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    }

    fn drop_bounding_capability(&self, cap: u32) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn set_keepcaps(&self, keep: bool) -> Result<(), Errno> {
        nix::sys::prctl::set_keepcaps(keep)
    }

    fn setgroups(&self, gids: &[u32]) -> Result<(), Errno> {
        let groups: Vec<nix::unistd::Gid> = gids
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups)
    }

    fn setresgid(&self, gid: u32) -> Result<(), Errno> {
        let gid = nix::unistd::Gid::from_raw(gid);
        nix::unistd::setresgid(gid, gid, gid)
    }

    fn setresuid(&self, uid: u32) -> Result<(), Errno> {
        let uid = nix::unistd::Uid::from_raw(uid);
        nix::unistd::setresuid(uid, uid, uid)
    }

    fn capset(&self, c: &CapabilityPlan) -> Result<(), Errno> {
        let header = libc_cap_header();
        let data = [
            CapData {
                effective: c.effective as u32,
                permitted: c.permitted as u32,
                inheritable: c.inheritable as u32,
            },
            CapData {
                effective: (c.effective >> 32) as u32,
                permitted: (c.permitted >> 32) as u32,
                inheritable: (c.inheritable >> 32) as u32,
            },
        ];
        // SAFETY: header and data are laid out as the kernel's
        // __user_cap_header_struct and two __user_cap_data_struct (version 3).
        if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn clear_ambient_capabilities(&self) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        if unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
        } < 0
        {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn raise_ambient_capability(&self, cap: u32) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        if unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                cap as libc::c_ulong,
                0,
                0,
            )
        } < 0
        {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn install_seccomp(&self, program: &SeccompProgram) -> Result<(), SeccompError> {
        crate::sys::seccomp::install(program)
    }

    fn set_dumpable(&self, dumpable: bool) -> Result<(), Errno> {
        nix::sys::prctl::set_dumpable(dumpable)
    }

    fn set_no_new_privs(&self) -> Result<(), Errno> {
        nix::sys::prctl::set_no_new_privs()
    }

    fn umask(&self, mask: u32) {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
            mask as libc::mode_t,
        ));
    }

    fn unblock_signals(&self) -> Result<(), Errno> {
        nix::sys::signal::SigSet::empty().thread_set_mask()
    }

    fn default_sigpipe(&self) -> Result<(), Errno> {
        // SAFETY: setting a default disposition installs no handler.
        unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        }
        .map(drop)
    }

    fn execve(&self, program: &CStr, argv: &[CString], envp: &[CString]) -> Errno {
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        // SAFETY: every pointer array is null-terminated and points at live C
        // strings; execve only returns on failure.
        unsafe { libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
        Errno::last()
    }

    fn setsid(&self) -> Result<(), Errno> {
        nix::unistd::setsid().map(drop)
    }

    fn dup_above_stdio(&self, fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
        // SAFETY: F_DUPFD_CLOEXEC on a live descriptor.
        let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(Errno::last());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(dup) })
    }

    fn dup2(&self, fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
        // SAFETY: dup2 of a live descriptor onto `target` (0..2 for stdio,
        // 3, 4, ... for the passed-through ones); the new one has no
        // close-on-exec.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(Errno::last());
        }
        Ok(())
    }

    fn open_pty(&self, size: Option<WindowSize>) -> Result<Pty, TtyError> {
        crate::sys::tty::open_pty(size)
    }

    fn send_fd(
        &self,
        channel: BorrowedFd<'_>,
        message: &[u8],
        fd: BorrowedFd<'_>,
    ) -> io::Result<()> {
        crate::sys::socket::send_with_fds(channel, &[io::IoSlice::new(message)], &[fd], false)
            .map(drop)
    }

    fn set_window_size(&self, fd: BorrowedFd<'_>, size: WindowSize) -> Result<(), TtyError> {
        crate::sys::tty::set_window_size(fd, size)
    }

    fn become_controlling_terminal(&self, slave: BorrowedFd<'_>) -> Result<(), TtyError> {
        crate::sys::tty::become_controlling_terminal(slave)
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn libc_cap_header() -> CapHeader {
    CapHeader {
        version: 0x2008_0522,
        pid: 0,
    }
}
