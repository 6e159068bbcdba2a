//! Which processes may not drive a supervisor: those of containers.
//!
//! A container that reaches a control socket (a path left visible, a bind
//! mount, a descriptor passed in) must still not be able to use it: an
//! ExecuteAsync with CAP_SYS_ADMIN would be the host. The Listener refuses
//! a peer that is in another pid namespace than the supervisor's (every
//! container with a pid namespace, of any runtime), whose pid it cannot
//! see, or that shares the mount namespace of one of this supervisor's
//! containers (those without a pid namespace of their own).

use std::collections::HashMap;
use std::sync::RwLock;

use thiserror::Error;

use crate::sys::procfs;

/// Why a peer counts as contained.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContainedPeer {
    /// SO_PEERCRED gave no pid: the peer is in a pid namespace this
    /// supervisor cannot see.
    #[error("the peer's pid is not visible from the supervisor's pid namespace")]
    Invisible,
    /// The peer's pid namespace is not the supervisor's.
    #[error("peer pid {pid} is in pid namespace {theirs}, not the supervisor's ({ours})")]
    OtherPidNamespace {
        /// The peer's pid.
        pid: i32,
        /// Its pid namespace's inode.
        theirs: u64,
        /// The supervisor's.
        ours: u64,
    },
    /// The peer shares a container's mount namespace.
    #[error("peer pid {pid} is inside container {cid:?}")]
    InContainer {
        /// The peer's pid.
        pid: i32,
        /// The container.
        cid: String,
    },
    /// /proc could not tell where the peer lives.
    #[error("cannot read the namespaces of peer pid {pid}: {detail}")]
    Unknown {
        /// The peer's pid.
        pid: i32,
        /// The error.
        detail: String,
    },
}

/// The mount namespaces of this supervisor's containers, kept by the
/// ContainerManager and read by the Listener.
#[derive(Debug, Default)]
pub struct ContainedNamespaces {
    mounts: RwLock<HashMap<u64, String>>,
}

impl ContainedNamespaces {
    /// Records the mount namespace (its inode) of container `cid`.
    pub fn insert(&self, mount_ns: u64, cid: &str) {
        self.write().insert(mount_ns, cid.to_owned());
    }

    /// Forgets container `cid`.
    pub fn remove_container(&self, cid: &str) {
        self.write().retain(|_, owner| owner != cid);
    }

    /// The container whose mount namespace has inode `mount_ns`.
    pub fn owner(&self, mount_ns: u64) -> Option<String> {
        self.mounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&mount_ns)
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, String>> {
        // Every update is one insert or retain: a poisoned lock holds a
        // consistent map.
        self.mounts.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the supervisor itself lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnPlace {
    /// Its pid namespace's inode.
    pub pid_ns: u64,
}

impl OwnPlace {
    /// Reads this process's pid namespace.
    pub fn read() -> std::io::Result<OwnPlace> {
        Ok(OwnPlace {
            pid_ns: procfs::namespace_inode("self", "pid")?,
        })
    }
}

/// Checks that peer `pid` (from SO_PEERCRED) lives outside every container.
pub fn check_peer(
    pid: i32,
    own: OwnPlace,
    contained: &ContainedNamespaces,
) -> Result<(), ContainedPeer> {
    if pid <= 0 {
        return Err(ContainedPeer::Invisible);
    }
    let unknown = |e: std::io::Error| ContainedPeer::Unknown {
        pid,
        detail: e.to_string().to_lowercase(),
    };
    let pid_ns = procfs::namespace_inode(&pid.to_string(), "pid").map_err(unknown)?;
    if pid_ns != own.pid_ns {
        return Err(ContainedPeer::OtherPidNamespace {
            pid,
            theirs: pid_ns,
            ours: own.pid_ns,
        });
    }
    let mount_ns = procfs::namespace_inode(&pid.to_string(), "mnt").map_err(unknown)?;
    match contained.owner(mount_ns) {
        Some(cid) => Err(ContainedPeer::InContainer { pid, cid }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_contained() {
        let own = OwnPlace::read().unwrap();
        let contained = ContainedNamespaces::default();
        assert_eq!(
            check_peer(std::process::id() as i32, own, &contained),
            Ok(())
        );
    }

    #[test]
    fn a_peer_in_a_recorded_mount_namespace_is_contained() {
        let own = OwnPlace::read().unwrap();
        let contained = ContainedNamespaces::default();
        let mine = procfs::namespace_inode("self", "mnt").unwrap();
        contained.insert(mine, "c1");
        let pid = std::process::id() as i32;
        assert_eq!(
            check_peer(pid, own, &contained),
            Err(ContainedPeer::InContainer {
                pid,
                cid: "c1".into()
            })
        );
        contained.remove_container("c1");
        assert_eq!(check_peer(pid, own, &contained), Ok(()));
    }

    #[test]
    fn an_invisible_peer_or_another_pid_namespace_is_contained() {
        let contained = ContainedNamespaces::default();
        let own = OwnPlace::read().unwrap();
        assert_eq!(
            check_peer(0, own, &contained),
            Err(ContainedPeer::Invisible)
        );
        let elsewhere = OwnPlace {
            pid_ns: own.pid_ns + 1,
        };
        let pid = std::process::id() as i32;
        assert_eq!(
            check_peer(pid, elsewhere, &contained),
            Err(ContainedPeer::OtherPidNamespace {
                pid,
                theirs: own.pid_ns,
                ours: own.pid_ns + 1
            })
        );
    }
}
