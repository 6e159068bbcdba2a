//! The spawner: a single-threaded helper process that clones every
//! container process.
//!
//! The supervisor is multi-threaded, so after `fork` its child could only
//! make async-signal-safe calls. Instead, before any thread exists, the
//! supervisor forks this helper; for each spawn it receives a
//! [`SpawnPlan`] and descriptors over a `SOCK_SEQPACKET` socketpair, and
//! `clone3`s a child with `CLONE_PARENT` (so the supervisor is the child's
//! parent and reaps it) and `CLONE_PIDFD`, then answers with the pid and
//! the pidfd. The child runs [`child::run`]: setup, then `execve`.
//!
//! It also clones resident spawners ([`ResidentPlan`]): copies of itself
//! that join a container's cgroups once and then serve the same requests
//! for that container, so that its processes are born in its cgroups
//! instead of migrating into them (see `child::become_resident`).
//!
//! A caller's spawner ([`fork_caller_spawner`]) is forked by the
//! runc-compatible CLI (`create`, `exec`) and handed to the supervisor with
//! the request: it clones the process as its own child, without
//! `CLONE_PARENT`, and exits once the supervisor closes its socket, so that
//! the process passes to the caller (a child subreaper) and from it to the
//! subreaper above (conmon, containerd's shim), which reaps it: runc's
//! contract, in which the pid file names the container's init.
//!
//! Message: one datagram, a CBOR body, descriptors as `SCM_RIGHTS`.

pub mod child;
mod client;
mod descriptors;
mod enter_root;
mod exec;
mod host_kernel;
mod identity;
mod kernel;
pub mod protected_exe;
#[cfg(test)]
mod recording_kernel;
pub mod reports;
pub mod resident;
mod rootfs;
#[cfg(test)]
mod sequence_tests;
pub mod spare;
mod stdio;
mod tmpcopyup;

pub use client::{SpawnError, Spawned, SpawnerConnection};

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::sys::plan::{NsKind, PlanKind, ResidentPlan, SpawnPlan};
use crate::sys::socket::{recv_with_fds, send_with_fds, ControlBuffer};

/// A request, with the descriptors it names sent alongside.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    order: Order,
}

/// What to clone.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Order {
    /// A process that executes the plan.
    Spawn(Box<SpawnPlan>),
    /// A resident spawner (only the main spawner clones those).
    Resident(ResidentPlan),
    /// Kill the process behind the pidfd sent with the order (pid `pid`)
    /// when the supervisor dies (main spawner only): a caller's container
    /// init is not the supervisor's child, and no death signal ties it to
    /// the supervisor, but the sandbox's containers die with it.
    Guard {
        /// Its pid, echoed in the reply.
        pid: i32,
    },
}

/// Which spawner serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The spawner forked at the supervisor's start.
    Main,
    /// A resident spawner in a container's cgroups.
    Resident,
    /// A caller's spawner: clones one request's process as its own child.
    Caller,
}

impl Role {
    /// Its name on the re-executed spawner's command line.
    fn name(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Resident => "resident",
            Role::Caller => "caller",
        }
    }
}

/// The answer; a successful one carries the child's pidfd.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: u64,
    outcome: Result<Cloned, SpawnFailure>,
}

/// A cloned process.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Cloned {
    /// Its pid.
    pid: i32,
    /// The intermediate child that cloned it (an exec's helper, see
    /// [`exec`]), which exits at once: its exit belongs to no process.
    helper: Option<i32>,
}

/// Why the spawner could not clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnFailure {
    /// What failed.
    pub step: String,
    /// The errno.
    pub errno: i32,
}

/// A pidfd of the supervisor, opened by the spawner at start: a child in a
/// new pid namespace cannot see its parent's pid, so it checks this one.
static SUPERVISOR: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// True when the supervisor has exited (as seen through its pidfd).
pub(crate) fn supervisor_gone() -> bool {
    SUPERVISOR
        .get()
        .is_some_and(|pidfd| crate::sys::process::pidfd_exited(pidfd.as_fd()))
}

/// `clone3`'s flag to start the child in the cgroup v2 directory
/// `clone_args.cgroup` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The largest request or reply datagram.
const MAX_MESSAGE: usize = 1 << 20;

/// The supervisor's end of the spawner, and the spawner's pid.
#[derive(Debug)]
pub struct SpawnerHandle {
    /// The socket.
    pub socket: OwnedFd,
    /// The spawner's pid.
    pub pid: i32,
}

/// Forks the spawner. Call it while the process has a single thread (at
/// the very start of `main`): the child serves requests until the parent
/// closes its end, and never returns.
pub fn fork_spawner() -> io::Result<SpawnerHandle> {
    fork_helper(Role::Main, &[])
}

/// Forks a caller's spawner (see the module's documentation): the
/// returned socket goes to the supervisor with a request whose
/// `caller_spawner` is set. Call it while the process has a single thread.
/// The spawner dies with this process; the caller makes itself a child
/// subreaper first, so that the process it clones passes to the caller when
/// the spawner exits.
pub fn fork_caller_spawner() -> io::Result<SpawnerHandle> {
    let threads = std::fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "a caller's spawner is forked from a single-threaded process, and this one has {threads} threads"
        )));
    }
    fork_helper(Role::Caller, &[])
}

/// A resident spawner forked at start ([`fork_resident`]).
#[derive(Debug)]
pub struct ForkedResident {
    /// The supervisor's end of its socket, and its pid.
    pub handle: SpawnerHandle,
    /// A pidfd naming it.
    pub pidfd: OwnedFd,
}

/// Forks a resident spawner that first joins the cgroups whose
/// `cgroup.procs` files are `procs` (the root container's, made ahead of
/// its StartRoot), then serves requests as the spawner does. Its join, and
/// the RCU grace period a cgroup v1 join waits for, overlap the
/// supervisor's own start. Call it, like [`fork_spawner`], while the
/// process has a single thread; it is a child of this process, reaped like
/// any other.
pub fn fork_resident(procs: &[PathBuf]) -> io::Result<ForkedResident> {
    let handle = fork_helper(Role::Resident, procs)?;
    let pidfd = crate::sys::process::pidfd_open(handle.pid)?;
    Ok(ForkedResident { handle, pidfd })
}

/// Forks the spawner, or a resident spawner that first joins `procs`.
fn fork_helper(role: Role, procs: &[PathBuf]) -> io::Result<SpawnerHandle> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )?;
    let parent = nix::unistd::getpid().as_raw();
    // SAFETY: the caller guarantees this process is single-threaded, so the
    // child may do anything, including allocate.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            serve_forked(theirs, parent, role, procs)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let size = MAX_MESSAGE;
            // A smaller buffer only lowers the largest plan that fits.
            let _ = nix::sys::socket::setsockopt(&ours, nix::sys::socket::sockopt::SndBuf, &size);
            Ok(SpawnerHandle {
                socket: ours,
                pid: child.as_raw(),
            })
        }
    }
}

fn serve_forked(socket: OwnedFd, parent: i32, role: Role, procs: &[PathBuf]) -> ! {
    if die_with(parent, role).is_err() {
        // SAFETY: ending the forked helper without running its parent's destructors.
        unsafe { libc::_exit(0) };
    }
    // Nothing of the parent's may leak into containers: keep stdio and the
    // socket, close the rest. The socket stays open across the re-exec.
    let socket = match move_to(socket, SOCKET_FD, 0) {
        Ok(s) => s,
        // SAFETY: as above.
        Err(_) => unsafe { libc::_exit(1) },
    };
    // SAFETY: closes descriptors from 4 up; none is owned by live Rust objects
    // of this process except the socket at 3.
    unsafe { libc::syscall(libc::SYS_close_range, SOCKET_FD as u32 + 1, u32::MAX, 0u32) };
    // The main spawner's re-exec is off the path of a start (the root
    // container's init comes from the prewarmed resident): at the lowest
    // priority it leaves the CPUs to the supervisor's own start meanwhile,
    // and takes back the supervisor's priority before it serves. Only with
    // CAP_SYS_NICE, which taking it back needs: containers must never
    // inherit the lowered one.
    // SAFETY: getpriority on this process, with integers.
    let priority = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let can_restore = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_NICE,
    )
    .unwrap_or(false);
    if role == Role::Main && can_restore {
        // SAFETY: setpriority on this process, with integers.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    }
    let mut args: Vec<std::ffi::OsString> = vec![
        role.name().into(),
        parent.to_string().into(),
        priority.to_string().into(),
    ];
    args.extend(procs.iter().map(|p| p.as_os_str().to_owned()));
    let error = protected_exe::reexec(&args);
    drop(socket);
    // The supervisor sees the socket close and says why it has no spawner.
    eprintln!("sandvisor: spawner: cannot run from a read-only executable: {error}");
    // SAFETY: as above.
    unsafe { libc::_exit(1) }
}

/// The descriptor the spawner's socket has, across its re-exec.
const SOCKET_FD: RawFd = 3;

/// Arms the parent death signal; fails if `parent` is gone already. The
/// main spawner arms none: it outlives the supervisor by the moment it
/// takes to see its socket close and kill the processes it guards (see
/// [`Order::Guard`]), then exits.
fn die_with(parent: i32, role: Role) -> io::Result<()> {
    if role != Role::Main {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    }
    if nix::unistd::getppid().as_raw() != parent {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// The spawner (or a resident spawner forked at start), re-executed from
/// a read-only mount of the binary ([`protected_exe`]) with `args`: its
/// role, the supervisor's pid, its priority (nice value) to take back,
/// and the `cgroup.procs` files to join. Call
/// it first thing in `main` when the first argument is
/// [`protected_exe::SPAWNER_ARG`]; it never returns.
pub fn serve_reexecuted(args: &[std::ffi::OsString]) -> ! {
    let role = match args.first().and_then(|a| a.to_str()) {
        Some(name) if name == Role::Main.name() => Role::Main,
        Some(name) if name == Role::Resident.name() => Role::Resident,
        Some(name) if name == Role::Caller.name() => Role::Caller,
        // SAFETY: ending this process without destructors.
        _ => unsafe { libc::_exit(2) },
    };
    let parent = match args.get(1).and_then(|a| a.to_str()?.parse::<i32>().ok()) {
        Some(pid) => pid,
        // SAFETY: as above.
        None => unsafe { libc::_exit(2) },
    };
    let priority = args.get(2).and_then(|a| a.to_str()?.parse::<i32>().ok());
    if let Some(priority) = priority {
        // SAFETY: getpriority and setpriority on this process, with integers.
        let restored = unsafe {
            libc::getpriority(libc::PRIO_PROCESS, 0) == priority
                || libc::setpriority(libc::PRIO_PROCESS, 0, priority) == 0
        };
        if !restored {
            // Every container would inherit the lowered priority.
            // SAFETY: ending this process without destructors.
            unsafe { libc::_exit(1) };
        }
    }
    let procs: Vec<PathBuf> = args.iter().skip(3).map(PathBuf::from).collect();
    if die_with(parent, role).is_err() || !protected_exe::executable_is_read_only() {
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    // Nothing cloned from here may be opened through /proc from a
    // container (its fds, cwd, root, exe) until it execs: execve resets
    // the flag for the program it runs.
    if nix::sys::prctl::set_dumpable(false).is_err() {
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    crate::sys::process::set_thread_name(match role {
        Role::Main => "sv-spawner",
        Role::Resident => "sv-resident",
        Role::Caller => "sv-caller-spawn",
    });
    // SAFETY: descriptor 3 is the socket the forked spawner kept across
    // the re-exec; nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(SOCKET_FD) };
    if nix::fcntl::fcntl(
        &socket,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .is_err()
    {
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    // SAFETY: closes descriptors above the socket; none is owned by live
    // Rust objects (std opens none before main).
    unsafe { libc::syscall(libc::SYS_close_range, SOCKET_FD as u32 + 1, u32::MAX, 0u32) };
    if let Ok(pidfd) = crate::sys::process::pidfd_open(parent) {
        let _ = SUPERVISOR.set(pidfd);
    }
    for path in &procs {
        // A resident that cannot join exits; the supervisor notices before
        // it sends it anything, and clones through the spawner instead.
        if std::fs::write(path, b"0").is_err() {
            // SAFETY: as above.
            unsafe { libc::_exit(1) };
        }
    }
    serve(socket, role);
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// Moves `fd` to `target`, with descriptor flags `flags` (0 or O_CLOEXEC).
fn move_to(fd: OwnedFd, target: RawFd, flags: i32) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() == target {
        nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFD(if flags == 0 {
                nix::fcntl::FdFlag::empty()
            } else {
                nix::fcntl::FdFlag::FD_CLOEXEC
            }),
        )?;
        return Ok(fd);
    }
    // SAFETY: dup3 onto `target`; `target` now names the socket and
    // nothing else owned it.
    let rc = unsafe { libc::dup3(fd.as_raw_fd(), target, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    Ok(unsafe { OwnedFd::from_raw_fd(target) })
}

/// Serves spawn requests on `socket` until it is closed.
fn serve(socket: OwnedFd, role: Role) {
    serve_requests(socket, role);
    // The supervisor is gone (or closed the socket at its end): the
    // processes it guarded go with it.
    for pidfd in guarded().drain(..) {
        let _ = crate::sys::process::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
    }
}

/// The pidfds of the processes the main spawner kills when the supervisor
/// goes (the spawner is single-threaded: the lock is never contended).
fn guarded() -> std::sync::MutexGuard<'static, Vec<OwnedFd>> {
    static GUARDED: std::sync::Mutex<Vec<OwnedFd>> = std::sync::Mutex::new(Vec::new());
    GUARDED.lock().unwrap_or_else(|p| p.into_inner())
}

fn serve_requests(socket: OwnedFd, role: Role) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut control = ControlBuffer::default();
    let mappings = protected_exe::FileMappings::of_self();
    mappings.shed();
    loop {
        if role == Role::Resident {
            // It lives in a container's memory cgroup: see `shed`.
            mappings.shed();
        }
        let received = match recv_with_fds(socket.as_fd(), &mut buf, &mut control, false) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if received.len == 0 && received.fds.is_empty() {
            return;
        }
        let (id, outcome) = match serde_cbor::from_slice::<Request>(&buf[..received.len]) {
            Ok(request) if !received.truncated => {
                (request.id, spawn(&request.order, received.fds, role))
            }
            Ok(request) => (
                request.id,
                Err(SpawnFailure {
                    step: "receive descriptors".into(),
                    errno: libc::EMSGSIZE,
                }),
            ),
            Err(_) => (
                0,
                Err(SpawnFailure {
                    step: "decode request".into(),
                    errno: libc::EINVAL,
                }),
            ),
        };
        let (outcome, pidfd) = match outcome {
            Ok((cloned, pidfd)) => (Ok(cloned), Some(pidfd)),
            Err(e) => (Err(e), None),
        };
        let reply = Reply { id, outcome };
        let Ok(bytes) = serde_cbor::to_vec(&reply) else {
            return;
        };
        let fds: Vec<BorrowedFd<'_>> = pidfd.iter().map(|fd| fd.as_fd()).collect();
        if send_with_fds(socket.as_fd(), &[IoSlice::new(&bytes)], &fds, false).is_err() {
            return;
        }
    }
}

/// Clones the child for `order`; returns its pid and pidfd.
fn spawn(order: &Order, fds: Vec<OwnedFd>, role: Role) -> Result<(Cloned, OwnedFd), SpawnFailure> {
    let failure = |step: &str, errno: Errno| SpawnFailure {
        step: step.to_owned(),
        errno: errno as i32,
    };
    let plan = match order {
        Order::Spawn(plan) => plan,
        Order::Resident(_) if role != Role::Main => {
            return Err(failure("clone a resident from a resident", Errno::EPERM))
        }
        Order::Resident(resident) => return spawn_resident(resident, fds),
        Order::Guard { .. } if role != Role::Main => {
            return Err(failure("guard from another spawner", Errno::EPERM))
        }
        Order::Guard { pid } => return guard(*pid, fds),
    };
    // A process is the caller's exactly when a caller's spawner clones it:
    // it then arms no death signal for the supervisor.
    if plan.caller_parented != (role == Role::Caller) {
        return Err(failure(
            "match the plan's parent to the spawner",
            Errno::EPERM,
        ));
    }
    // The child puts passed-through descriptors at 3, 4, ...: none of the
    // plan's may sit there.
    let floor = 3 + plan.process.preserved_fds.len() as i32;
    let fds = fds
        .into_iter()
        .map(|fd| {
            if fd.as_raw_fd() >= floor {
                return Ok(fd);
            }
            // SAFETY: F_DUPFD_CLOEXEC on a live descriptor returns a new
            // one nothing else owns.
            let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
            if moved < 0 {
                return Err(failure("renumber descriptors", Errno::last()));
            }
            // SAFETY: see above.
            Ok(unsafe { OwnedFd::from_raw_fd(moved) })
        })
        .collect::<Result<Vec<OwnedFd>, SpawnFailure>>()?;
    let mut flags = libc::CLONE_PIDFD as u64;
    if role != Role::Caller {
        // The supervisor's child, reaped by its Reaper.
        flags |= libc::CLONE_PARENT as u64;
    }
    if let PlanKind::Container(c) = &plan.kind {
        for ns in &c.new_namespaces {
            flags |= ns.clone_flag();
        }
    }
    let into_cgroup = match plan.clone_into_cgroup {
        Some(index) => Some(
            fds.get(index)
                .ok_or_else(|| failure("cgroup directory descriptor", Errno::EBADF))?
                .as_raw_fd(),
        ),
        None => None,
    };
    if let PlanKind::Exec(_) = &plan.kind {
        return exec::spawn(plan, fds, flags, into_cgroup);
    }
    // An init that joins a pid namespace by path must be born in it: a
    // setns of its own would only place its children there.
    let joined_pid_ns = match &plan.kind {
        PlanKind::Container(c) => c.join.iter().find(|j| j.kind == NsKind::Pid),
        _ => None,
    };
    let restore_pid_ns = match joined_pid_ns {
        Some(join) => {
            Some(enter_pid_ns_for_children(&fds, join.fd).map_err(|(step, e)| failure(step, e))?)
        }
        None => None,
    };
    let cloned = match clone_child(flags, into_cgroup) {
        Ok(None) => child::run(plan, &fds),
        Ok(Some(child)) => Ok(child),
        Err(errno) => Err(errno),
    };
    if let Some(own) = restore_pid_ns {
        // Only children were affected: later ones are born in ours again.
        let _ = nix::sched::setns(&own, nix::sched::CloneFlags::CLONE_NEWPID);
    }
    let (pid, pidfd) = cloned.map_err(|errno| failure("clone3", errno))?;
    Ok((Cloned { pid, helper: None }, pidfd))
}

/// Keeps the pidfd sent with a guard order; answers with a copy of it.
fn guard(pid: i32, fds: Vec<OwnedFd>) -> Result<(Cloned, OwnedFd), SpawnFailure> {
    let Some(pidfd) = fds.into_iter().next() else {
        return Err(SpawnFailure {
            step: "guard: no pidfd".into(),
            errno: libc::EBADF,
        });
    };
    let copy = pidfd.try_clone().map_err(|e| SpawnFailure {
        step: "guard: duplicate the pidfd".into(),
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    })?;
    let mut guarded = guarded();
    // Those that ended need no guard.
    guarded.retain(|fd| !crate::sys::process::pidfd_exited(fd.as_fd()));
    guarded.push(pidfd);
    Ok((Cloned { pid, helper: None }, copy))
}

/// Makes this process's next children be born in the pid namespace at plan
/// descriptor `index`; returns its own pid namespace, to go back to.
fn enter_pid_ns_for_children(
    fds: &[OwnedFd],
    index: usize,
) -> Result<OwnedFd, (&'static str, Errno)> {
    let target = fds
        .get(index)
        .ok_or(("pid namespace descriptor", Errno::EBADF))?;
    let own = nix::fcntl::open(
        "/proc/self/ns/pid",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ("open own pid namespace", e))?;
    nix::sched::setns(target, nix::sched::CloneFlags::CLONE_NEWPID)
        .map_err(|e| ("join pid namespace", e))?;
    Ok(own)
}

/// Clones a resident spawner, which serves its own socket until the
/// supervisor closes it.
fn spawn_resident(
    plan: &ResidentPlan,
    fds: Vec<OwnedFd>,
) -> Result<(Cloned, OwnedFd), SpawnFailure> {
    match clone_child((libc::CLONE_PIDFD | libc::CLONE_PARENT) as u64, None) {
        Ok(Some((pid, pidfd))) => Ok((Cloned { pid, helper: None }, pidfd)),
        Ok(None) => {
            let socket = child::become_resident(plan, fds);
            serve(socket, Role::Resident);
            // SAFETY: _exit ends the resident without running destructors
            // that belong to the spawner it was copied from.
            unsafe { libc::_exit(0) }
        }
        Err(errno) => Err(SpawnFailure {
            step: "clone3".into(),
            errno: errno as i32,
        }),
    }
}

/// `clone3` with `flags` into the cgroup v2 directory `into_cgroup` if
/// given: the parent gets the child's pid and pidfd, the child `None`.
fn clone_child(flags: u64, into_cgroup: Option<RawFd>) -> Result<Option<(i32, OwnedFd)>, Errno> {
    let mut pidfd: RawFd = -1;
    // SAFETY: clone_args is plain data for which zeroes are valid.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags;
    if let Some(fd) = into_cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    // With CLONE_PARENT the kernel takes the exit signal from this process
    // (SIGCHLD, as it was forked); a child of this process needs SIGCHLD
    // too, or a parent's plain waitpid (a subreaper's) never sees it.
    args.exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    // SAFETY: clone3 without CLONE_VM is a fork: the child gets a copy of
    // this single-threaded process and returns 0 here; `args` and `pidfd`
    // outlive the call.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match pid {
        0 => Ok(None),
        pid if pid < 0 => Err(Errno::last()),
        // SAFETY: CLONE_PIDFD stored a new descriptor that nothing else owns.
        pid => Ok(Some((pid as i32, unsafe { OwnedFd::from_raw_fd(pidfd) }))),
    }
}
