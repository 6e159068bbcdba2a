//! The state directory of the runc-compatible commands: one entry per
//! container under `--root`, so that `state`, `list`, `kill` and `delete`
//! find a container (and its supervisor) from its id alone.
//!
//! Each entry is `<root>/<id>/state.json`. It is written whole or not at
//! all (a temporary file, then `rename`), so a crash never leaves
//! half a file; and commands on one container take an exclusive `flock` on
//! its directory, so two of them never interleave. Creating an entry is
//! `mkdir`, which fails when the id is taken: the id check and the claim
//! are one step. The directory of the root container is also its
//! sandbox's (the control socket lives there).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sandvisor_actors::container::id::valid_container_id;
use sandvisor_actors::sys::process;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The name of an entry's file.
const STATE_FILE: &str = "state.json";

/// Why a state directory operation failed.
#[derive(Debug, Error)]
pub enum StateError {
    /// The id could escape the directory or is not one runc accepts.
    #[error("invalid container id {0:?}: use 1 to 1024 letters, digits, '_', '+', '-' or '.', not only dots")]
    BadId(String),
    /// No container has that id.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The id is taken.
    #[error("container with id {0:?} already exists")]
    Exists(String),
    /// The entry's file is not a state this version reads.
    #[error("read state of container {id:?}: {detail}")]
    Corrupt {
        /// The container.
        id: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A file system call failed.
    #[error("{what} {path}: {}", .source.to_string().to_lowercase())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: String,
        /// The error.
        source: io::Error,
    },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateError {
    let path = path.display().to_string();
    move |source| StateError::Io { what, path, source }
}

/// What the state directory keeps of a container: the OCI state fields that
/// do not change, and where its supervisor is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The container id.
    pub id: String,
    /// The OCI version of its spec.
    pub oci_version: String,
    /// The absolute bundle path.
    pub bundle: PathBuf,
    /// The absolute path of its root filesystem.
    pub rootfs: PathBuf,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// When it was created (RFC 3339, UTC).
    pub created: String,
    /// The sandbox it belongs to (its root container's id).
    pub sandbox: String,
    /// The supervisor's control socket.
    pub socket: PathBuf,
    /// The supervisor, to tell it from a process that reused its pid.
    pub supervisor: ProcessIdentity,
    /// The init, once it exists.
    #[serde(default)]
    pub init: Option<ProcessIdentity>,
}

/// A process named so that a reused pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// Its pid.
    pub pid: i32,
    /// Its start time, in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_time: u64,
}

impl ProcessIdentity {
    /// The identity of live process `pid`, if it exists.
    pub fn of(pid: i32) -> Option<ProcessIdentity> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after = stat.get(stat.rfind(')')? + 2..)?;
        let start_time = after.split_whitespace().nth(19)?.parse().ok()?;
        Some(ProcessIdentity { pid, start_time })
    }

    /// True when the process still runs (and is the same one): a zombie
    /// waiting for its parent to reap it has ended.
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let zombie = stat
            .rfind(')')
            .and_then(|end| stat.get(end + 2..end + 3))
            .is_some_and(|state| state == "Z");
        !zombie && ProcessIdentity::of(self.pid).is_some_and(|now| now == *self)
    }
}

impl ProcessIdentity {
    /// Waits until the process has exited (its pidfd says so: no polling
    /// loop); false if it still runs after `patience`.
    pub fn wait_exit(&self, patience: std::time::Duration) -> bool {
        let Ok(pidfd) = process::pidfd_open(self.pid) else {
            return true;
        };
        // Opened after the pid was reused: the process we mean is gone.
        !self.is_alive()
            || process::pidfd_wait_exited(std::os::fd::AsFd::as_fd(&pidfd), patience)
            || !self.is_alive()
    }
}

/// A container's status, as the OCI state reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being set up.
    Creating,
    /// Set up, its init waiting for `start`.
    Created,
    /// Its init runs (for [`Entry::status`]: it is alive, created or
    /// running).
    Running,
    /// Frozen.
    Paused,
    /// Its init has exited, or its supervisor is gone.
    Stopped,
}

impl Status {
    /// Its name in runc's output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl Entry {
    /// Whether the init is alive (`Running`) or not (`Stopped`), and its
    /// pid (0 once stopped, as runc says), from /proc alone: the
    /// supervisor knows whether a live init is created or running.
    pub fn status(&self) -> (Status, i32) {
        match self.init {
            Some(init) if self.supervisor.is_alive() && init.is_alive() => {
                (Status::Running, init.pid)
            }
            _ => (Status::Stopped, 0),
        }
    }
}

/// Checks a container id as runc does; the rule keeps it inside the
/// directory (no '/', not "." or "..").
pub fn check_id(id: &str) -> Result<(), StateError> {
    if valid_container_id(id) {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_owned()))
    }
}

/// The state directory (`--root`).
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// An exclusive claim on one container's entry; released when dropped.
#[derive(Debug)]
pub struct Locked {
    _lock: Flock<File>,
    dir: PathBuf,
    id: String,
}

impl StateDir {
    /// The state directory at `root`, created (0700) if missing.
    pub fn open(root: &Path) -> Result<StateDir, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io_error("create state directory", root))?;
        Ok(StateDir {
            root: root.to_path_buf(),
        })
    }

    /// The directory of container `id`.
    pub fn dir(&self, id: &str) -> Result<PathBuf, StateError> {
        check_id(id)?;
        Ok(self.root.join(id))
    }

    /// Claims a new entry for `id` (its directory is made, or the id is
    /// taken) and locks it.
    pub fn create(&self, id: &str) -> Result<Locked, StateError> {
        let dir = self.dir(id)?;
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_owned()))
            }
            Err(e) => return Err(io_error("create", &dir)(e)),
        }
        self.lock_dir(id, dir)
    }

    /// Locks the existing entry of `id`, waiting for another command that
    /// holds it.
    pub fn lock(&self, id: &str) -> Result<Locked, StateError> {
        let dir = self.dir(id)?;
        if !dir.is_dir() {
            return Err(StateError::NotFound(id.to_owned()));
        }
        self.lock_dir(id, dir)
    }

    fn lock_dir(&self, id: &str, dir: PathBuf) -> Result<Locked, StateError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => StateError::NotFound(id.to_owned()),
                _ => io_error("open", &dir)(e),
            })?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io_error("lock", &dir)(errno.into()))?;
        Ok(Locked {
            _lock: lock,
            dir,
            id: id.to_owned(),
        })
    }

    /// The ids of every entry, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = fs::read_dir(&self.root).map_err(io_error("list", &self.root))?;
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join(STATE_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| check_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Reads the entry of `id` without locking it (a reader sees the old
    /// file or the new one, never a mix).
    pub fn load(&self, id: &str) -> Result<Entry, StateError> {
        let path = self.dir(id)?.join(STATE_FILE);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StateError::NotFound(id.to_owned()),
            _ => io_error("read", &path)(e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            id: id.to_owned(),
            detail: e.to_string(),
        })
    }
}

impl Locked {
    /// The container's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the entry's file atomically.
    pub fn save(&self, entry: &Entry) -> Result<(), StateError> {
        let path = self.dir.join(STATE_FILE);
        let temporary = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec(entry).map_err(|e| StateError::Corrupt {
            id: self.id.clone(),
            detail: e.to_string(),
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io_error("create", &temporary))?;
        // No fsync: the rename alone makes a dying command leave the old file
        // or the new one, and the state of running containers does not
        // outlive a reboot (it lives in /run), so there is nothing to make
        // durable on the path of every start.
        file.write_all(&bytes)
            .map_err(io_error("write", &temporary))?;
        fs::rename(&temporary, &path).map_err(io_error("rename into", &path))
    }

    /// Removes the entry's file, leaving its directory (a sandbox's, which
    /// its supervisor removes).
    pub fn forget(&self) -> Result<(), StateError> {
        let path = self.dir.join(STATE_FILE);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Removes the entry (its directory and everything in it).
    pub fn remove(self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.dir) {
            // Its supervisor, stopping, took it already.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other.map_err(io_error("remove", &self.dir)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.to_owned(),
            oci_version: "1.0.2".into(),
            bundle: PathBuf::from("/bundles/b"),
            rootfs: PathBuf::from("/bundles/b/rootfs"),
            annotations: [("a".to_owned(), "b".to_owned())].into(),
            created: "2026-11-29T05:00:00.000000000Z".into(),
            sandbox: id.to_owned(),
            socket: PathBuf::from("/run/sandvisor/x/ctl.sock"),
            supervisor: ProcessIdentity {
                pid: 42,
                start_time: 7,
            },
            init: Some(ProcessIdentity {
                pid: 43,
                start_time: 8,
            }),
        }
    }

    #[test]
    fn ids_that_could_escape_or_runc_refuses_are_refused() {
        for id in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/",
            "a b",
            "x\0",
            &"a".repeat(1025),
        ] {
            assert!(matches!(check_id(id), Err(StateError::BadId(_))), "{id:?}");
        }
        for id in ["a", "a.b", "A_b+c-1", "..a", &"a".repeat(1024)] {
            assert!(check_id(id).is_ok(), "{id:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path()).unwrap();
        assert!(matches!(dir.create("../x"), Err(StateError::BadId(_))));
        assert!(!tmp.path().parent().unwrap().join("x").exists());
    }

    #[test]
    fn create_claims_the_id_once_and_save_load_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(&tmp.path().join("root")).unwrap();
        assert!(matches!(dir.load("c1"), Err(StateError::NotFound(id)) if id == "c1"));
        let locked = dir.create("c1").unwrap();
        assert!(matches!(dir.create("c1"), Err(StateError::Exists(id)) if id == "c1"));
        // Claimed but not saved yet: not listed.
        assert_eq!(dir.ids().unwrap(), Vec::<String>::new());
        locked.save(&entry("c1")).unwrap();
        assert_eq!(dir.load("c1").unwrap(), entry("c1"));
        assert_eq!(dir.ids().unwrap(), vec!["c1".to_owned()]);
        // No temporary file is left beside it.
        let names: Vec<String> = fs::read_dir(locked.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![STATE_FILE.to_owned()]);
        locked.remove().unwrap();
        assert!(matches!(dir.lock("c1"), Err(StateError::NotFound(_))));
        assert_eq!(dir.ids().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_half_written_temporary_file_never_replaces_the_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path()).unwrap();
        let locked = dir.create("c2").unwrap();
        locked.save(&entry("c2")).unwrap();
        // A crash in the middle of a save leaves only the temporary file.
        fs::write(
            locked.dir().join(".state.json.tmp"),
            b"{\"id\": \"c2\", \"oci",
        )
        .unwrap();
        assert_eq!(dir.load("c2").unwrap(), entry("c2"));
        let mut next = entry("c2");
        next.init = None;
        locked.save(&next).unwrap();
        assert_eq!(dir.load("c2").unwrap(), next);
        // A corrupt file is said to be one, naming the container.
        fs::write(locked.dir().join(STATE_FILE), b"{").unwrap();
        let err = dir.load("c2").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("read state of container \"c2\": "),
            "{err}"
        );
    }

    #[test]
    fn a_second_command_waits_for_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path()).unwrap();
        let first = dir.create("c3").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = dir.clone();
        let waiter = std::thread::spawn(move || {
            let second = other.lock("c3").unwrap();
            tx.send(()).unwrap();
            drop(second);
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn the_status_needs_both_the_supervisor_and_the_init() {
        let me = ProcessIdentity::of(std::process::id() as i32).unwrap();
        let gone = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        };
        let mut e = entry("c4");
        e.supervisor = me;
        e.init = Some(me);
        assert_eq!(e.status(), (Status::Running, me.pid));
        e.init = Some(gone);
        assert_eq!(e.status(), (Status::Stopped, 0));
        e.init = None;
        assert_eq!(e.status(), (Status::Stopped, 0));
        e.init = Some(me);
        e.supervisor = gone;
        assert_eq!(e.status(), (Status::Stopped, 0));
    }

    #[test]
    fn a_process_identity_survives_only_with_its_process() {
        let me = ProcessIdentity::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let reused = ProcessIdentity {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessIdentity::of(child.id() as i32);
        // Exited but not reaped yet (waitid's WNOWAIT leaves the zombie,
        // however late the child runs): a zombie is not alive.
        // SAFETY: siginfo_t is plain data, for which all zeros is a value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a live out-pointer, on our own child.
        let waited = unsafe {
            libc::waitid(
                libc::P_PID,
                child.id(),
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(waited, 0, "{}", std::io::Error::last_os_error());
        assert!(id.is_none_or(|id| !id.is_alive()));
        child.wait().unwrap();
        assert!(id.is_none_or(|id| !id.is_alive()));
    }
}
