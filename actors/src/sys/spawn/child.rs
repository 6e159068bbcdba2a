//! The child side of a spawn: executes a [`SpawnPlan`] between `clone3` and
//! `execve`, reporting the first failure (step, path, errno) on the status
//! pipe.
//!
//! The child is a copy of the single-threaded spawner, so it may allocate;
//! it never returns: it execs or `_exit`s.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};

use nix::errno::Errno;

use super::{descriptors, tmpcopyup};
use crate::sys::mount::{self, AsFdRef, MountFailure, Target};
use crate::sys::plan::{
    CapabilityPlan, ChildFailure, ChildReport, ContainerPlan, ExecPlan, JoinNs, MountPlan, NsKind,
    PlanKind, ProcessPlan, ResidentPlan, RootfsPlan, SpawnPlan, StdioPlan,
};

/// Where a step failed.
pub(super) struct Failure {
    step: &'static str,
    path: String,
    errno: i32,
    message: String,
}

pub(super) type Step<T = ()> = Result<T, Failure>;

pub(super) fn errno_failure(step: &'static str, path: impl Into<String>, errno: Errno) -> Failure {
    Failure {
        step,
        path: path.into(),
        errno: errno as i32,
        message: errno.desc().to_lowercase(),
    }
}

pub(super) fn io_failure(
    step: &'static str,
    path: impl Into<String>,
    e: &std::io::Error,
) -> Failure {
    errno_failure(
        step,
        path,
        Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}

pub(super) fn last_errno(step: &'static str, path: impl Into<String>) -> Failure {
    errno_failure(step, path, Errno::last())
}

pub(super) fn other(
    step: &'static str,
    path: impl Into<String>,
    message: impl Into<String>,
) -> Failure {
    Failure {
        step,
        path: path.into(),
        errno: 0,
        message: message.into(),
    }
}

impl From<Failure> for ChildFailure {
    fn from(f: Failure) -> Self {
        ChildFailure {
            step: f.step.to_owned(),
            path: f.path,
            errno: f.errno,
            message: f.message,
        }
    }
}

impl From<MountFailure> for Failure {
    fn from(f: MountFailure) -> Self {
        Failure {
            step: f.step,
            path: f.path,
            errno: f.errno as i32,
            message: f.errno.desc().to_lowercase(),
        }
    }
}

/// The descriptors sent with the plan.
pub(super) struct Fds<'a>(pub(super) &'a [OwnedFd]);

impl Fds<'_> {
    pub(super) fn get(&self, index: usize, what: &'static str) -> Step<BorrowedFd<'_>> {
        self.0.get(index).map(|fd| fd.as_fd()).ok_or_else(|| {
            other(
                "plan",
                what,
                format!("descriptor index {index} was not sent"),
            )
        })
    }
}

/// Runs `plan` and execs; on failure reports on the status pipe and exits.
pub fn run(plan: &SpawnPlan, fds: &[OwnedFd]) -> ! {
    run_steps(plan, fds, |fds| setup_and_exec(plan, fds))
}

/// Runs `steps`, which exec or `_exit` when they succeed; reports their
/// failure (or panic) on the plan's status pipe and exits 127.
pub(super) fn run_steps(
    plan: &SpawnPlan,
    fds: &[OwnedFd],
    steps: impl FnOnce(&Fds<'_>) -> Step<Never>,
) -> ! {
    let fds = Fds(fds);
    let status = fds
        .get(plan.status, "status pipe")
        .ok()
        .map(|fd| fd.as_raw_fd());
    let outcome = catch_unwind(AssertUnwindSafe(|| steps(&fds)));
    let failure = match outcome {
        Ok(Err(failure)) => failure,
        Ok(Ok(never)) => match never {},
        Err(_) => other("spawn", "", "the child panicked during setup"),
    };
    if let Some(fd) = status {
        report(fd, &ChildReport::Failed(failure.into()));
    }
    // SAFETY: _exit ends the process without running atexit handlers or
    // destructors that belong to the spawner.
    unsafe { libc::_exit(127) }
}

/// Makes this freshly cloned copy of the spawner a resident spawner: dies
/// with the supervisor, joins the cgroups, keeps only its request socket
/// (moved to descriptor 3, in place of the spawner's), reports `Ready` and
/// returns the socket to serve. On failure it reports why and exits.
pub fn become_resident(plan: &ResidentPlan, fds: Vec<OwnedFd>) -> OwnedFd {
    let status = fds.get(plan.status).map(|fd| fd.as_raw_fd());
    let setup = || -> Step<OwnedFd> {
        let borrowed = Fds(&fds);
        die_with_supervisor(plan.supervisor_pid)?;
        join_cgroups(&plan.cgroup_procs, &borrowed)?;
        let socket = borrowed.get(plan.socket, "resident socket")?;
        // SAFETY: dup3 onto descriptor 3, which holds the spawner's socket:
        // this copy must not read the spawner's requests, and descriptor 3
        // then names the resident's socket, owned by nothing else.
        if unsafe { libc::dup3(socket.as_raw_fd(), 3, libc::O_CLOEXEC) } < 0 {
            return Err(last_errno("move socket", "resident socket"));
        }
        // SAFETY: see above.
        Ok(unsafe { OwnedFd::from_raw_fd(3) })
    };
    match setup() {
        Ok(socket) => {
            if let Some(fd) = status {
                report(fd, &ChildReport::Ready);
            }
            // The plan's descriptors (status pipe, cgroup.procs files, the
            // socket's old number) close here.
            drop(fds);
            crate::sys::process::set_thread_name("sv-resident");
            socket
        }
        Err(failure) => {
            if let Some(fd) = status {
                report(fd, &ChildReport::Failed(failure.into()));
            }
            // SAFETY: _exit ends this copy without running the spawner's
            // destructors.
            unsafe { libc::_exit(1) }
        }
    }
}

/// What a setup that only ends by exec or `_exit` returns on success.
pub(super) enum Never {}

pub(super) fn report(fd: RawFd, report: &ChildReport) {
    if let Ok(bytes) = serde_cbor::to_vec(report) {
        // SAFETY: `fd` is the live status pipe; write only reads `bytes`.
        // One write below PIPE_BUF is atomic.
        let _ = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    }
}

fn setup_and_exec(plan: &SpawnPlan, fds: &Fds<'_>) -> Step<Never> {
    if !plan.caller_parented {
        die_with_supervisor(plan.supervisor_pid)?;
    }
    let status = fds.get(plan.status, "status pipe")?;
    report(
        status.as_raw_fd(),
        &ChildReport::Pid(nix::unistd::getpid().as_raw()),
    );
    let stdio_done = match &plan.kind {
        PlanKind::Container(container) => setup_container(container, plan, fds)?,
        // Cloned in two steps, through `super::exec`.
        PlanKind::Exec(_) => {
            return Err(other("spawn", "", "an exec is cloned through its helper"))
        }
        PlanKind::Hook => false,
    };
    exec_process(&plan.process, fds, stdio_done)
}

pub(super) fn die_with_supervisor(supervisor: i32) -> Step {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } < 0 {
        return Err(last_errno("set parent death signal", ""));
    }
    // The supervisor may have died before the signal was armed. In a new
    // pid namespace the parent's pid reads as 0: ask its pidfd instead.
    let parent = nix::unistd::getppid().as_raw();
    if (parent != 0 && parent != supervisor) || super::supervisor_gone() {
        return Err(other(
            "check parent",
            "",
            "the supervisor exited during setup",
        ));
    }
    Ok(())
}

fn join(ns: &[JoinNs], fds: &Fds<'_>) -> Step {
    for kind in NsKind::JOIN_ORDER {
        for entry in ns.iter().filter(|j| j.kind == kind) {
            let fd = fds.get(entry.fd, kind.proc_name())?;
            // SAFETY: setns with a live namespace descriptor.
            if unsafe { libc::setns(fd.as_raw_fd(), kind.clone_flag() as i32) } < 0 {
                return Err(last_errno("setns", kind.proc_name()));
            }
        }
    }
    Ok(())
}

fn join_cgroups(procs: &[usize], fds: &Fds<'_>) -> Step {
    for &index in procs {
        let fd = fds.get(index, "cgroup.procs")?;
        // SAFETY: write of a static buffer to a live descriptor.
        if unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) } < 0 {
            return Err(last_errno("join cgroup", "cgroup.procs"));
        }
    }
    Ok(())
}

/// Sets the container up; returns whether its stdio is in place already.
fn setup_container(c: &ContainerPlan, plan: &SpawnPlan, fds: &Fds<'_>) -> Step<bool> {
    join(&c.join, fds)?;
    join_cgroups(&c.cgroup_procs, fds)?;
    if c.unshare_cgroup_ns {
        // SAFETY: unshare with a flag.
        if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } < 0 {
            return Err(last_errno("unshare cgroup namespace", ""));
        }
    }
    if let Some(name) = &c.hostname {
        nix::unistd::sethostname(name).map_err(|e| errno_failure("sethostname", name, e))?;
    }
    if let Some(name) = &c.domainname {
        // SAFETY: the pointer and length describe `name`'s bytes.
        if unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) } < 0 {
            return Err(last_errno("setdomainname", name));
        }
    }
    if c.loopback_up {
        loopback_up()?;
    }
    // The host's /proc is still mounted: it names this process by its
    // host pid, which hooks are given.
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()));
    prepare_rootfs(&c.rootfs)?;
    if let Some(gate) = c.runtime_hooks_gate {
        let status = fds.get(plan.status, "status pipe")?;
        report(status.as_raw_fd(), &ChildReport::RuntimeHooks);
        wait_for_start(fds.get(gate, "runtime hooks gate")?)?;
    }
    let state = |status: oci_spec::runtime::ContainerState| -> Vec<u8> {
        c.hook_state
            .clone()
            .map(|mut s| {
                s.set_status(status);
                s.set_pid(host_pid);
                serde_json::to_vec(&s).unwrap_or_default()
            })
            .unwrap_or_default()
    };
    if !c.create_container_hooks.is_empty() {
        crate::sys::hooks::run_hooks(
            &c.create_container_hooks,
            &state(oci_spec::runtime::ContainerState::Creating),
        )
        .map_err(|e| other("createContainer hook", "", e.to_string()))?;
    }
    super::enter_root::enter_rootfs(&c.rootfs, &c.sysctl)?;
    // From here on the container's root is this process's: keep nothing of
    // the host but what the process is given (and the gate it waits at).
    let mut keep = descriptors::process_fd_indexes(plan);
    keep.extend(c.start_gate);
    descriptors::close_all_except(&descriptors::raw_fds(fds, &keep)?)?;
    let mut stdio_done = false;
    if let Some(gate) = c.start_gate {
        // The terminal exists at create, as runc's: whoever holds the
        // console socket gets the master before it calls start.
        setup_stdio(&plan.process.stdio, fds)?;
        stdio_done = true;
        let status = fds.get(plan.status, "status pipe")?;
        report(status.as_raw_fd(), &ChildReport::Ready);
        wait_for_start(fds.get(gate, "start gate")?)?;
    }
    if !c.start_container_hooks.is_empty() {
        crate::sys::hooks::run_hooks(
            &c.start_container_hooks,
            &state(oci_spec::runtime::ContainerState::Created),
        )
        .map_err(|e| other("startContainer hook", "", e.to_string()))?;
    }
    Ok(stdio_done)
}

pub(super) fn join_container(e: &ExecPlan, fds: &Fds<'_>) -> Step {
    join_cgroups(&e.cgroup_procs, fds)?;
    join(&e.join, fds)?;
    if let Some(root) = e.root {
        let root = fds.get(root, "container root")?;
        // SAFETY: fchdir and chroot with a live descriptor and a static path.
        unsafe {
            if libc::fchdir(root.as_raw_fd()) < 0 {
                return Err(last_errno("fchdir", "container root"));
            }
            if libc::chroot(c".".as_ptr()) < 0 {
                return Err(last_errno("chroot", "container root"));
            }
        }
    }
    Ok(())
}

fn wait_for_start(gate: BorrowedFd<'_>) -> Step {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(gate, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(other(
                    "wait for start",
                    "",
                    "the supervisor went away before start",
                ))
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(errno_failure("wait for start", "", e)),
        }
    }
}

/// Mounts everything under the new root, before `pivot_root`.
fn prepare_rootfs(r: &RootfsPlan) -> Step {
    // Nothing done from here on may propagate back to the host.
    mount::mount(None, "/", None, r.propagation, None, "/")?;
    // A shared propagation (`rootfsPropagation: shared`) must not reach
    // the new root's own mount, nor its parent's.
    mount::make_parent_mount_private(&r.path)?;
    // pivot_root needs the new root to be a mount point.
    mount::mount(
        Some(&r.path),
        &r.path,
        None,
        (libc::MS_BIND | libc::MS_REC) as u64,
        None,
        &r.path,
    )?;
    let open_root = || {
        nix::fcntl::open(
            r.path.as_str(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| errno_failure("open rootfs", &r.path, e))
    };
    let mut root = open_root()?;
    for m in &r.mounts {
        mount_one(root.as_fd_ref(), m)?;
        if m.destination == "/" {
            // A mount over the root hides what the old descriptor names.
            root = open_root()?;
        }
    }
    for d in &r.devices {
        mount::make_device(
            root.as_fd_ref(),
            &d.path,
            d.file_type,
            d.major,
            d.minor,
            d.mode,
            (d.uid, d.gid),
        )?;
    }
    if r.dev_symlinks {
        for (target, link) in [
            ("/proc/self/fd", "/dev/fd"),
            ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"),
            ("/proc/self/fd/2", "/dev/stderr"),
            ("pts/ptmx", "/dev/ptmx"),
        ] {
            mount::make_symlink(root.as_fd_ref(), target, link)?;
        }
    }
    Ok(())
}

fn mount_one(root: BorrowedFd<'_>, m: &MountPlan) -> Step {
    if m.flags & libc::MS_REMOUNT as u64 != 0 {
        // Changes flags of something mounted earlier in the plan.
        let dest = mount::open_in_root(root, &m.destination, libc::O_PATH)
            .map_err(|e| errno_failure("open mount destination", &m.destination, e))?;
        mount::mount(
            None,
            &mount::fd_path(dest.as_fd_ref()),
            None,
            m.flags,
            None,
            &m.destination,
        )?;
        return Ok(());
    }
    let target_kind = if m.is_bind() {
        let meta = std::fs::metadata(&m.source).map_err(|e| {
            errno_failure(
                "stat bind source",
                &m.source,
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
        if meta.is_dir() {
            Target::Directory
        } else {
            Target::File
        }
    } else {
        Target::Directory
    };
    let covered = tmpcopyup::open_covered(root, m)?;
    let dest = mount::create_in_root(root, &m.destination, target_kind)?;
    let target = mount::fd_path(dest.as_fd_ref());
    let fstype = (!m.fstype.is_empty()).then_some(m.fstype.as_str());
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    let source = (!m.source.is_empty()).then_some(m.source.as_str());
    if m.is_bind() {
        let recursive = m.flags & libc::MS_REC as u64;
        mount::mount(
            source,
            &target,
            None,
            libc::MS_BIND as u64 | recursive,
            None,
            &m.destination,
        )?;
        // A bind ignores other flags: apply them with a remount.
        let extra = m.flags & !(libc::MS_BIND as u64 | libc::MS_REC as u64);
        if extra != 0 {
            let dest = mount::open_in_root(root, &m.destination, libc::O_PATH)
                .map_err(|e| errno_failure("open mount destination", &m.destination, e))?;
            mount::mount(
                None,
                &mount::fd_path(dest.as_fd_ref()),
                None,
                libc::MS_BIND as u64 | libc::MS_REMOUNT as u64 | extra,
                None,
                &m.destination,
            )?;
        }
    } else {
        let flags = tmpcopyup::mount_flags(m);
        mount::mount(source, &target, fstype, flags, data, &m.destination).map_err(|f| {
            let unknown_type = f.errno == Errno::ENODEV;
            let mut failure = Failure::from(f);
            if unknown_type {
                failure.message = format!("unknown filesystem type {:?}", m.fstype);
            }
            failure
        })?;
    }
    // Re-open: the descriptor taken before mounting names the covered
    // directory, not the new mount.
    if let Some(covered) = &covered {
        tmpcopyup::fill(root, m, covered)?;
    }
    let mounted = mount::open_in_root(root, &m.destination, libc::O_PATH)
        .map_err(|e| errno_failure("open mount destination", &m.destination, e))?;
    if m.propagation != 0 {
        mount::mount(
            None,
            &mount::fd_path(mounted.as_fd_ref()),
            None,
            m.propagation,
            None,
            &m.destination,
        )?;
    }
    if m.recursive_attr_set != 0 || m.recursive_attr_clear != 0 {
        mount::set_mount_attributes(
            mounted.as_fd_ref(),
            true,
            m.recursive_attr_set,
            m.recursive_attr_clear,
            &m.destination,
        )?;
    }
    Ok(())
}

fn loopback_up() -> Step {
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

pub(super) fn exec_process(p: &ProcessPlan, fds: &Fds<'_>, stdio_done: bool) -> Step<Never> {
    for r in &p.rlimits {
        let limit = libc::rlimit {
            rlim_cur: r.soft,
            rlim_max: r.hard,
        };
        // SAFETY: `limit` is a live rlimit.
        if unsafe { libc::setrlimit(r.resource as _, &limit) } < 0 {
            return Err(last_errno("setrlimit", format!("resource {}", r.resource)));
        }
    }
    if let Some(adj) = p.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            errno_failure(
                "oom_score_adj",
                adj.to_string(),
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
    }
    let cwd =
        CString::new(p.cwd.as_str()).map_err(|_| other("chdir", &p.cwd, "path has a nul byte"))?;
    // SAFETY: a live C string.
    if unsafe { libc::chdir(cwd.as_ptr()) } < 0 {
        return Err(last_errno("chdir", &p.cwd));
    }
    check_cwd_inside_root(&p.cwd)?;
    let program = find_program(p)?;
    let argv: Vec<CString> = p
        .args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| other("exec", &p.args[0], "an argument has a nul byte"))?;
    let envp: Vec<CString> = p
        .env
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| other("exec", &p.args[0], "an environment entry has a nul byte"))?;
    let seccomp_stage = p
        .seccomp
        .as_ref()
        .map(|_| SeccompStage::for_no_new_privileges(p.no_new_privileges));
    if seccomp_stage == Some(SeccompStage::BeforeIdentity) {
        install_seccomp(p)?;
    }
    set_identity(p)?;
    // A change of credentials sets the dumpable flag to fs.suid_dumpable,
    // which a host may have at 1: until execve nothing in the container
    // may open this process's /proc entries.
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
        return Err(last_errno("set non-dumpable", ""));
    }
    if !stdio_done {
        setup_stdio(&p.stdio, fds)?;
    }
    place_preserved(&p.preserved_fds, fds)?;
    if let Some(mask) = p.umask {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    reset_signals()?;
    if p.no_new_privileges {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
            return Err(last_errno("set no_new_privs", ""));
        }
    }
    if seccomp_stage == Some(SeccompStage::BeforeExec) {
        install_seccomp(p)?;
    }
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: every pointer array is null-terminated and points at live C
    // strings; execve only returns on failure.
    unsafe { libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    Err(last_errno("exec", program.to_string_lossy().into_owned()))
}

/// Gives the program the signal state a process started by runc gets:
/// nothing blocked (a caller may have blocked the signals it forwards), and
/// SIGPIPE at its default (Rust's runtime ignores it, and execve keeps
/// ignored signals ignored).
fn reset_signals() -> Step {
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .map_err(|e| errno_failure("unblock signals", "", e))?;
    // SAFETY: setting a default disposition installs no handler.
    unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    }
    .map_err(|e| errno_failure("reset the SIGPIPE disposition", "", e))?;
    Ok(())
}

/// When a process's seccomp filter goes in (runc's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeccompStage {
    /// Before the user changes and capabilities are dropped: without
    /// no_new_privs the kernel installs a filter only for a thread with
    /// CAP_SYS_ADMIN, which the drop takes away.
    BeforeIdentity,
    /// Just before execve, so that as few of the setup's system calls as
    /// possible run under the filter (and need the profile to allow them).
    BeforeExec,
}

impl SeccompStage {
    fn for_no_new_privileges(no_new_privileges: bool) -> SeccompStage {
        if no_new_privileges {
            SeccompStage::BeforeExec
        } else {
            SeccompStage::BeforeIdentity
        }
    }
}

fn install_seccomp(p: &ProcessPlan) -> Step {
    match &p.seccomp {
        Some(program) => crate::sys::seccomp::install(program).map_err(seccomp_failure),
        None => Ok(()),
    }
}

/// A refused filter, with the errno the kernel gave (EACCES: neither
/// no_new_privs nor CAP_SYS_ADMIN).
fn seccomp_failure(e: crate::sys::seccomp::SeccompError) -> Failure {
    let failure = other("install seccomp filter", "", e.to_string());
    match e.errno() {
        Some(errno) => failure.with_errno(errno),
        None => failure,
    }
}

/// Refuses a working directory outside the process's root, which a path
/// through a descriptor (`/proc/self/fd/N`) could have reached: the
/// kernel's getcwd marks such a directory "(unreachable)".
fn check_cwd_inside_root(requested: &str) -> Step {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let len = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if len < 0 {
        return Err(last_errno("check working directory", requested));
    }
    if buf.first() != Some(&b'/') {
        return Err(other(
            "check working directory",
            requested,
            "the working directory is outside the container's root",
        )
        .with_errno(Errno::EPERM));
    }
    Ok(())
}

/// Resolves `args[0]` as execvp does, in the process's own `PATH`.
fn find_program(p: &ProcessPlan) -> Step<CString> {
    if let Some(path) = &p.executable {
        return CString::new(path.as_str()).map_err(|_| other("exec", path, "path has a nul byte"));
    }
    let name = p
        .args
        .first()
        .ok_or_else(|| other("exec", "", "no arguments"))?;
    let candidate =
        |path: &str| CString::new(path).map_err(|_| other("exec", name, "path has a nul byte"));
    if name.contains('/') {
        return candidate(name);
    }
    let path = p
        .env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let full = format!("{dir}/{name}");
        let c = candidate(&full)?;
        // SAFETY: a live C string.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            return Ok(c);
        }
        if Errno::last() == Errno::EACCES {
            denied = Some(full);
        }
    }
    match denied {
        Some(full) => Err(errno_failure("exec", full, Errno::EACCES)),
        None => Err(other(
            "exec",
            name,
            format!("executable file {name:?} not found in $PATH"),
        )
        .with_errno(Errno::ENOENT)),
    }
}

impl Failure {
    fn with_errno(mut self, errno: Errno) -> Self {
        self.errno = errno as i32;
        self
    }

    pub(super) fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}

fn set_identity(p: &ProcessPlan) -> Step {
    // Dropping from the bounding set needs CAP_SETPCAP, which setuid to a
    // non-root user clears from the effective set: drop first.
    if let Some(caps) = &p.capabilities {
        drop_bounding(caps.bounding)?;
    }
    let keep_caps = p.capabilities.is_some() && p.uid != 0;
    if keep_caps {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } < 0 {
            return Err(last_errno("keep capabilities", ""));
        }
    }
    let groups: Vec<libc::gid_t> = p.additional_gids.clone();
    // SAFETY: the pointer and length describe `groups`.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } < 0 {
        return Err(last_errno("setgroups", format!("{:?}", p.additional_gids)));
    }
    // SAFETY: plain system calls.
    if unsafe { libc::setresgid(p.gid, p.gid, p.gid) } < 0 {
        return Err(last_errno("setgid", p.gid.to_string()));
    }
    // SAFETY: plain system call.
    if unsafe { libc::setresuid(p.uid, p.uid, p.uid) } < 0 {
        return Err(last_errno("setuid", p.uid.to_string()));
    }
    if let Some(caps) = &p.capabilities {
        apply_capabilities(caps)?;
    }
    Ok(())
}

fn drop_bounding(bounding: u64) -> Step {
    for cap in 0..=last_capability() {
        if bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0
                && Errno::last() != Errno::EINVAL
            {
                return Err(last_errno("drop bounding capability", cap.to_string()));
            }
        }
    }
    Ok(())
}

fn apply_capabilities(c: &CapabilityPlan) -> Step {
    let last = last_capability();
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
        return Err(last_errno("capset", format!("{c:?}")));
    }
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
        return Err(last_errno("clear ambient capabilities", ""));
    }
    for cap in 0..=last {
        if c.ambient & (1 << cap) != 0 {
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
                return Err(last_errno("raise ambient capability", cap.to_string()));
            }
        }
    }
    Ok(())
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

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Puts the passed-through descriptors at 3, 4, ... without close-on-exec.
/// The spawner numbered every descriptor of the plan above them, so none
/// that is still needed is overwritten.
fn place_preserved(preserved: &[usize], fds: &Fds<'_>) -> Step {
    for (n, &index) in preserved.iter().enumerate() {
        let fd = fds.get(index, "preserved descriptor")?;
        let target = 3 + n as i32;
        // SAFETY: dup2 of a live descriptor onto `target`; the new one has
        // no close-on-exec.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(last_errno("pass descriptor", target.to_string()));
        }
    }
    Ok(())
}

fn setup_stdio(stdio: &StdioPlan, fds: &Fds<'_>) -> Step {
    match *stdio {
        StdioPlan::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            // A session (and process group) of its own: signals meant for
            // its group must never reach the supervisor's.
            nix::unistd::setsid().map_err(|e| errno_failure("setsid", "", e))?;
            // Duplicate all three out of the way first, so that a source
            // that is already 0, 1 or 2 is not clobbered.
            let sources = [
                fds.get(stdin, "stdin")?,
                fds.get(stdout, "stdout")?,
                fds.get(stderr, "stderr")?,
            ];
            let mut moved = Vec::with_capacity(3);
            for fd in sources {
                // SAFETY: F_DUPFD_CLOEXEC on a live descriptor.
                let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
                if dup < 0 {
                    return Err(last_errno("duplicate stdio", ""));
                }
                // SAFETY: a new descriptor nothing else owns.
                moved.push(unsafe { OwnedFd::from_raw_fd(dup) });
            }
            for (target, fd) in moved.iter().enumerate() {
                // SAFETY: dup2 onto 0..2; the new descriptor has no CLOEXEC.
                if unsafe { libc::dup2(fd.as_raw_fd(), target as i32) } < 0 {
                    return Err(last_errno("dup2", target.to_string()));
                }
            }
            Ok(())
        }
        StdioPlan::NewTerminal { channel, size } => {
            // The container's /dev/ptmx: its devpts is the one that knows
            // the slave, so ttyname and friends work inside.
            let pty = crate::sys::tty::open_pty(size)
                .map_err(|e| other("allocate terminal", "/dev/ptmx", e.to_string()))?;
            let channel = fds.get(channel, "console channel")?;
            crate::sys::socket::send_with_fds(
                channel,
                &[std::io::IoSlice::new(b"pty")],
                &[pty.master.as_fd()],
                false,
            )
            .map_err(|e| {
                errno_failure(
                    "send terminal",
                    "",
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                )
            })?;
            drop(pty.master);
            crate::sys::tty::become_controlling_terminal(pty.slave.as_fd())
                .map_err(|e| other("controlling terminal", "", e.to_string()))
        }
        StdioPlan::Terminal { slave, size } => {
            let slave = fds.get(slave, "terminal")?;
            if let Some(size) = size {
                crate::sys::tty::set_window_size(slave, size)
                    .map_err(|e| other("set window size", "", e.to_string()))?;
            }
            crate::sys::tty::become_controlling_terminal(slave)
                .map_err(|e| other("controlling terminal", "", e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::seccomp::SeccompError;

    #[test]
    fn without_no_new_privileges_the_filter_goes_in_before_the_identity_changes() {
        assert_eq!(
            SeccompStage::for_no_new_privileges(false),
            SeccompStage::BeforeIdentity
        );
        assert_eq!(
            SeccompStage::for_no_new_privileges(true),
            SeccompStage::BeforeExec
        );
    }

    #[test]
    fn a_refused_filter_reports_the_kernel_s_errno() {
        let failure = seccomp_failure(SeccompError::Install {
            flags: 0,
            errno: Errno::EACCES,
        });
        assert_eq!(failure.errno, libc::EACCES);
        assert_eq!(failure.step, "install seccomp filter");
        assert!(failure.message.contains("EACCES"), "{}", failure.message);
        let failure = seccomp_failure(SeccompError::BadProgram { len: 3, max: 4096 });
        assert_eq!(failure.errno, 0, "no system call failed");
    }
}
