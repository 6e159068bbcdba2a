//! Signals and the listing of a container's processes.

use std::collections::HashMap;

use actix::Context;
use tokio::sync::oneshot;

use super::error::ContainerError;
use super::registry::Phase;
use super::ContainerManager;
use crate::api::container::{ProcessInfo, ProcessList, Processes, Signal, SignalMode};
use crate::api::Empty;
use crate::sys::process::WaitStatus;
use crate::sys::procfs;
use crate::wire::RpcError;

impl ContainerManager {
    /// SIGKILLs every process of a container; returns their exit waiters.
    pub(super) fn kill_container(&mut self, cid: &str) -> Vec<oneshot::Receiver<WaitStatus>> {
        let pids: Vec<i32> = self
            .processes
            .iter()
            .filter(|(_, p)| p.container == cid && p.exit.is_none())
            .map(|(pid, _)| *pid)
            .collect();
        // Processes it forked that this manager did not start die with the
        // init's pid namespace; without one of their own, kill them by cgroup.
        for (host, _) in self.container_pids(cid) {
            if !pids.contains(&host) {
                // SAFETY: kill(2) with plain integers.
                unsafe { libc::kill(host, libc::SIGKILL) };
            }
        }
        let exits = pids
            .into_iter()
            .map(|pid| {
                if let Some(p) = self.processes.get(&pid) {
                    let _ = p.signal(libc::SIGKILL);
                }
                self.exit_waiter(pid)
            })
            .collect();
        self.thaw_killed(cid);
        exits
    }

    /// The container's processes as (host pid, pid in the container).
    fn container_pids(&self, cid: &str) -> Vec<(i32, i32)> {
        let Some(c) = self.containers.get(cid) else {
            return Vec::new();
        };
        let host_pids = match &c.cgroup {
            Some(cg) if !cg.dirs.is_empty() => cg.pids().unwrap_or_default(),
            // Without cgroups, the processes this manager started.
            _ => self
                .processes
                .iter()
                .filter(|(_, p)| p.container == cid && p.exit.is_none())
                .map(|(pid, _)| *pid)
                .collect(),
        };
        // A process in its cgroups but outside its pid namespace is not
        // one of its processes: the exit relay `create --pid-file` leaves.
        let pid_ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let own_ns = c.init.and_then(pid_ns);
        let supervisor_ns = pid_ns(self.config.supervisor_pid);
        host_pids
            .into_iter()
            .filter(|host| !self.processes.get(host).is_some_and(|p| p.resident))
            .filter(|host| own_ns == supervisor_ns || pid_ns(*host) == own_ns)
            .filter_map(|host| procfs::innermost_pid(host).ok().map(|inner| (host, inner)))
            .collect()
    }

    /// The host pid of `pid` (container pid namespace; 0 = the init).
    fn host_pid(&self, cid: &str, pid: i32) -> Result<i32, ContainerError> {
        let c = self
            .containers
            .get(cid)
            .ok_or_else(|| ContainerError::NotFound(cid.to_owned()))?;
        if pid == 0 {
            return c
                .init
                .ok_or_else(|| ContainerError::NotRunning(cid.to_owned()));
        }
        self.container_pids(cid)
            .into_iter()
            .find(|(_, inner)| *inner == pid)
            .map(|(host, _)| host)
            .ok_or(ContainerError::NoSuchProcess {
                cid: cid.to_owned(),
                pid,
            })
    }

    pub(super) fn signal(&mut self, req: Signal, _: &mut Context<Self>) -> Result<Empty, RpcError> {
        self.send_signal(&req).map_err(RpcError::from)?;
        if req.signo == libc::SIGKILL {
            self.thaw_killed(&req.cid);
        }
        Ok(Empty {})
    }

    fn send_signal(&self, req: &Signal) -> Result<(), ContainerError> {
        if !(1..=64).contains(&req.signo) {
            return Err(ContainerError::BadSignal(req.signo));
        }
        let c = self
            .containers
            .get(&req.cid)
            .ok_or_else(|| ContainerError::NotFound(req.cid.clone()))?;
        // A created container's init can be signalled (as runc allows): it
        // dies at its start gate.
        if !matches!(c.phase, Phase::Running | Phase::Created | Phase::Paused) {
            return Err(ContainerError::NotRunning(req.cid.clone()));
        }
        let kill = |target: i32, what: String| {
            // SAFETY: kill(2) with plain integers.
            if unsafe { libc::kill(target, req.signo) } < 0 {
                return Err(ContainerError::Kill {
                    signo: req.signo,
                    target: what,
                    source: nix::Error::last(),
                });
            }
            Ok(())
        };
        match req.mode {
            SignalMode::Process => {
                let host = self.host_pid(&req.cid, req.pid)?;
                // The init (and anything this manager started) is signalled
                // through its pidfd: immune to pid reuse.
                match self.processes.get(&host) {
                    // One of ours that exited: its pid may be reused already.
                    Some(p) if p.exit.is_some() => Err(ContainerError::NoSuchProcess {
                        cid: req.cid.clone(),
                        pid: req.pid,
                    }),
                    Some(p) => p.signal(req.signo).map_err(|e| ContainerError::Kill {
                        signo: req.signo,
                        target: format!("pid {}", req.pid),
                        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(0)),
                    }),
                    None => kill(host, format!("pid {}", req.pid)),
                }
            }
            SignalMode::AllProcesses => {
                if req.pid != 0 {
                    return Err(ContainerError::PidWithAll(req.pid));
                }
                for (host, inner) in self.container_pids(&req.cid) {
                    // A process may exit meanwhile: that is not an error.
                    match kill(host, format!("pid {inner}")) {
                        Err(ContainerError::Kill {
                            source: nix::Error::ESRCH,
                            ..
                        })
                        | Ok(()) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            SignalMode::ForegroundProcessGroup | SignalMode::ProcessGroup => {
                let host = self.host_pid(&req.cid, req.pid)?;
                let stat = procfs::stat(host).map_err(|_| ContainerError::NoSuchProcess {
                    cid: req.cid.clone(),
                    pid: req.pid,
                })?;
                let group = if req.mode == SignalMode::ProcessGroup {
                    stat.pgrp
                } else if stat.tty_nr == 0 || stat.tpgid <= 0 {
                    return Err(ContainerError::NoTerminal(req.pid));
                } else {
                    stat.tpgid
                };
                kill(-group, format!("process group {group}"))
            }
        }
    }

    pub(super) fn processes(
        &mut self,
        req: Processes,
        _: &mut Context<Self>,
    ) -> Result<ProcessList, RpcError> {
        if !self.containers.contains_key(&req.cid) {
            return Err(ContainerError::NotFound(req.cid).into());
        }
        let (uptime, ticks) =
            procfs::uptime().map_err(|e| ContainerError::host("read", "/proc/uptime", e))?;
        let boot_ms = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
            - uptime)
            * 1000.0;
        let pids = self.container_pids(&req.cid);
        let inner_of: HashMap<i32, i32> = pids.iter().copied().collect();
        let mut processes: Vec<ProcessInfo> = pids
            .iter()
            .filter_map(|&(host, inner)| {
                // A process may exit while it is being listed.
                let stat = procfs::stat(host).ok()?;
                let started_s = stat.start_time as f64 / ticks as f64;
                let cpu_s = (stat.utime + stat.stime) as f64 / ticks as f64;
                let alive_s = (uptime - started_s).max(0.001);
                Some(ProcessInfo {
                    uid: procfs::uid(host).unwrap_or(0),
                    pid: inner,
                    host_pid: host,
                    ppid: inner_of.get(&stat.ppid).copied().unwrap_or(0),
                    pgid: stat.pgrp,
                    threads: stat.num_threads,
                    cpu_percent: (cpu_s / alive_s * 1000.0).round() / 10.0,
                    tty: tty_name(stat.tty_nr),
                    start_time_ms: (boot_ms + started_s * 1000.0).max(0.0) as u64,
                    cpu_time_ms: (cpu_s * 1000.0) as u64,
                    command: match procfs::cmdline(host) {
                        Ok(c) if !c.is_empty() => c,
                        _ => format!("[{}]", stat.comm),
                    },
                })
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        Ok(ProcessList { processes })
    }
}

/// The name of a terminal device number, as ps shows it.
fn tty_name(tty_nr: u32) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 => format!("tty{minor}"),
        5 => match minor {
            0 => "tty".into(),
            1 => "console".into(),
            _ => format!("5:{minor}"),
        },
        _ => format!("{major}:{minor}"),
    }
}
