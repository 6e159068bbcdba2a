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

use super::descriptors;
use super::host_kernel::HostKernel;
use super::identity::{install_seccomp, set_identity, SeccompStage};
use super::kernel::Kernel;
use super::stdio::{place_preserved, setup_stdio};
use crate::sys::mount::MountFailure;
use crate::sys::plan::{
    ChildFailure, ChildReport, ContainerPlan, ExecPlan, JoinNs, NsKind, PlanKind, ProcessPlan,
    ResidentPlan, SpawnPlan,
};

/// Where a step failed.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) step: &'static str,
    pub(super) path: String,
    pub(super) errno: i32,
    pub(super) message: String,
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
    run_steps(plan, fds, |fds| setup_and_exec(&HostKernel, plan, fds))
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
        die_with_supervisor(&HostKernel, plan.supervisor_pid)?;
        join_cgroups(&HostKernel, &plan.cgroup_procs, &borrowed)?;
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

pub(super) fn setup_and_exec<K: Kernel>(k: &K, plan: &SpawnPlan, fds: &Fds<'_>) -> Step<Never> {
    if !plan.caller_parented {
        die_with_supervisor(k, plan.supervisor_pid)?;
    }
    let status = fds.get(plan.status, "status pipe")?;
    k.report(status, &ChildReport::Pid(k.pid()));
    let stdio_done = match &plan.kind {
        PlanKind::Container(container) => setup_container(k, container, plan, fds)?,
        // Cloned in two steps, through `super::exec`.
        PlanKind::Exec(_) => {
            return Err(other("spawn", "", "an exec is cloned through its helper"))
        }
        PlanKind::Hook => false,
    };
    exec_process(k, &plan.process, fds, stdio_done)
}

pub(super) fn die_with_supervisor<K: Kernel>(k: &K, supervisor: i32) -> Step {
    k.set_parent_death_signal()
        .map_err(|e| errno_failure("set parent death signal", "", e))?;
    // The supervisor may have died before the signal was armed. In a new
    // pid namespace the parent's pid reads as 0: ask its pidfd instead.
    let parent = k.parent_pid();
    if (parent != 0 && parent != supervisor) || k.supervisor_gone() {
        return Err(other(
            "check parent",
            "",
            "the supervisor exited during setup",
        ));
    }
    Ok(())
}

fn join<K: Kernel>(k: &K, ns: &[JoinNs], fds: &Fds<'_>) -> Step {
    for kind in NsKind::JOIN_ORDER {
        for entry in ns.iter().filter(|j| j.kind == kind) {
            let fd = fds.get(entry.fd, kind.proc_name())?;
            k.setns(fd, kind)
                .map_err(|e| errno_failure("setns", kind.proc_name(), e))?;
        }
    }
    Ok(())
}

fn join_cgroups<K: Kernel>(k: &K, procs: &[usize], fds: &Fds<'_>) -> Step {
    for &index in procs {
        let fd = fds.get(index, "cgroup.procs")?;
        k.join_cgroup(fd)
            .map_err(|e| errno_failure("join cgroup", "cgroup.procs", e))?;
    }
    Ok(())
}

/// Sets the container up; returns whether its stdio is in place already.
fn setup_container<K: Kernel>(
    k: &K,
    c: &ContainerPlan,
    plan: &SpawnPlan,
    fds: &Fds<'_>,
) -> Step<bool> {
    join(k, &c.join, fds)?;
    join_cgroups(k, &c.cgroup_procs, fds)?;
    if c.unshare_cgroup_ns {
        k.unshare(NsKind::Cgroup)
            .map_err(|e| errno_failure("unshare cgroup namespace", "", e))?;
    }
    if let Some(name) = &c.hostname {
        k.sethostname(name)
            .map_err(|e| errno_failure("sethostname", name, e))?;
    }
    if let Some(name) = &c.domainname {
        k.setdomainname(name)
            .map_err(|e| errno_failure("setdomainname", name, e))?;
    }
    if c.loopback_up {
        k.loopback_up()?;
    }
    // The host's /proc is still mounted: it names this process by its
    // host pid, which hooks are given.
    let host_pid = k.host_pid();
    super::rootfs::prepare_rootfs(k, &c.rootfs)?;
    if let Some(gate) = c.runtime_hooks_gate {
        let status = fds.get(plan.status, "status pipe")?;
        k.report(status, &ChildReport::RuntimeHooks);
        wait_for_start(k, fds.get(gate, "runtime hooks gate")?)?;
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
        k.run_hooks(
            &c.create_container_hooks,
            &state(oci_spec::runtime::ContainerState::Creating),
        )
        .map_err(|e| other("createContainer hook", "", e.to_string()))?;
    }
    super::enter_root::enter_rootfs(k, &c.rootfs, &c.sysctl)?;
    // From here on the container's root is this process's: keep nothing of
    // the host but what the process is given (and the gate it waits at).
    let mut keep = descriptors::process_fd_indexes(plan);
    keep.extend(c.start_gate);
    k.close_all_except(&descriptors::raw_fds(fds, &keep)?)?;
    let mut stdio_done = false;
    if let Some(gate) = c.start_gate {
        // The terminal exists at create, as runc's: whoever holds the
        // console socket gets the master before it calls start.
        setup_stdio(k, &plan.process.stdio, fds)?;
        stdio_done = true;
        let status = fds.get(plan.status, "status pipe")?;
        k.report(status, &ChildReport::Ready);
        wait_for_start(k, fds.get(gate, "start gate")?)?;
    }
    if !c.start_container_hooks.is_empty() {
        k.run_hooks(
            &c.start_container_hooks,
            &state(oci_spec::runtime::ContainerState::Created),
        )
        .map_err(|e| other("startContainer hook", "", e.to_string()))?;
    }
    Ok(stdio_done)
}

pub(super) fn join_container<K: Kernel>(k: &K, e: &ExecPlan, fds: &Fds<'_>) -> Step {
    join_cgroups(k, &e.cgroup_procs, fds)?;
    join(k, &e.join, fds)?;
    if let Some(root) = e.root {
        let root = fds.get(root, "container root")?;
        k.fchdir(root)
            .map_err(|e| errno_failure("fchdir", "container root", e))?;
        k.chroot(".")
            .map_err(|e| errno_failure("chroot", "container root", e))?;
    }
    Ok(())
}

fn wait_for_start<K: Kernel>(k: &K, gate: BorrowedFd<'_>) -> Step {
    let mut byte = [0u8; 1];
    loop {
        match k.read(gate, &mut byte) {
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

pub(super) fn exec_process<K: Kernel>(
    k: &K,
    p: &ProcessPlan,
    fds: &Fds<'_>,
    stdio_done: bool,
) -> Step<Never> {
    for r in &p.rlimits {
        k.setrlimit(r.resource, r.soft, r.hard)
            .map_err(|e| errno_failure("setrlimit", format!("resource {}", r.resource), e))?;
    }
    if let Some(adj) = p.oom_score_adj {
        k.write_oom_score_adj(adj).map_err(|e| {
            errno_failure(
                "oom_score_adj",
                adj.to_string(),
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )
        })?;
    }
    let cwd =
        CString::new(p.cwd.as_str()).map_err(|_| other("chdir", &p.cwd, "path has a nul byte"))?;
    k.chdir(cwd.as_c_str())
        .map_err(|e| errno_failure("chdir", &p.cwd, e))?;
    check_cwd_inside_root(k, &p.cwd)?;
    let program = find_program(k, p)?;
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
        install_seccomp(k, p)?;
    }
    set_identity(k, p)?;
    // A change of credentials sets the dumpable flag to fs.suid_dumpable,
    // which a host may have at 1: until execve nothing in the container
    // may open this process's /proc entries.
    k.set_dumpable(false)
        .map_err(|e| errno_failure("set non-dumpable", "", e))?;
    if !stdio_done {
        setup_stdio(k, &p.stdio, fds)?;
    }
    place_preserved(k, &p.preserved_fds, fds)?;
    if let Some(mask) = p.umask {
        k.umask(mask);
    }
    reset_signals(k)?;
    if p.no_new_privileges {
        k.set_no_new_privs()
            .map_err(|e| errno_failure("set no_new_privs", "", e))?;
    }
    if seccomp_stage == Some(SeccompStage::BeforeExec) {
        install_seccomp(k, p)?;
    }
    let errno = k.execve(&program, &argv, &envp);
    Err(errno_failure(
        "exec",
        program.to_string_lossy().into_owned(),
        errno,
    ))
}

/// Gives the program the signal state a process started by runc gets:
/// nothing blocked (a caller may have blocked the signals it forwards), and
/// SIGPIPE at its default (Rust's runtime ignores it, and execve keeps
/// ignored signals ignored).
fn reset_signals<K: Kernel>(k: &K) -> Step {
    k.unblock_signals()
        .map_err(|e| errno_failure("unblock signals", "", e))?;
    k.default_sigpipe()
        .map_err(|e| errno_failure("reset the SIGPIPE disposition", "", e))?;
    Ok(())
}

/// Refuses a working directory outside the process's root, which a path
/// through a descriptor (`/proc/self/fd/N`) could have reached: the
/// kernel's getcwd marks such a directory "(unreachable)".
fn check_cwd_inside_root<K: Kernel>(k: &K, requested: &str) -> Step {
    let reachable = k
        .cwd_reachable()
        .map_err(|e| errno_failure("check working directory", requested, e))?;
    if !reachable {
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
fn find_program<K: Kernel>(k: &K, p: &ProcessPlan) -> Step<CString> {
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
        match k.access_executable(&c) {
            Ok(()) => return Ok(c),
            Err(Errno::EACCES) => denied = Some(full),
            Err(_) => {}
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
    pub(super) fn with_errno(mut self, errno: Errno) -> Self {
        self.errno = errno as i32;
        self
    }

    pub(super) fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}
