//! Actor restarts lose nothing: exec+wait cycles run while panics are
//! injected into the ContainerManager and the Reaper.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sandvisor::actors::container::spec::default_spec;
use sandvisor::api::container::{ExecuteAsync, Signal, SignalMode, StartRoot, Wait, WaitPid};
use sandvisor::api::debug::{ActorState, FaultKind};
use sandvisor::api::Fds;
use sandvisor::{ClientError, ErrorCode};

fn dev_null() -> Vec<OwnedFd> {
    (0..3)
        .map(|_| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .unwrap()
                .into()
        })
        .collect()
}

/// Retries a call caught in a restart (`unavailable`), as callers are told to.
fn retried<T>(mut call: impl FnMut() -> Result<T, ClientError>) -> (T, u32) {
    let mut retries = 0;
    loop {
        match call() {
            Err(ClientError::Rpc(e)) if e.code == ErrorCode::Unavailable && retries < 50 => {
                retries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => {
                return (
                    other.unwrap_or_else(|e| panic!("call failed: {e}")),
                    retries,
                )
            }
        }
    }
}

fn zombies_of(parent: u32) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let after = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str())
        })
        .collect()
}

#[test]
fn exec_and_wait_survive_panics_in_the_manager_and_the_reaper() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "containers need root (CI runs as root)"
    );
    let mut sv = Supervisor::boot();
    let client = sv.client();
    let cid = "chaos";
    client
        .invoke(StartRoot {
            cid: cid.into(),
            spec: default_spec(cid, vec!["sleep".into(), "3600".into()], false),
            bundle: None,
            console_socket: None,
            preserve_fds: 0,
            hold: false,
            caller_spawner: false,
            fds: Fds(dev_null()),
        })
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicU32::new(0));
    let injector = {
        let (client, stop, injected) = (sv.client(), stop.clone(), injected.clone());
        std::thread::spawn(move || {
            let mut turn = 0;
            while !stop.load(Ordering::Relaxed) {
                let actor = if turn % 2 == 0 {
                    "ContainerManager"
                } else {
                    "Reaper"
                };
                client.inject_fault(actor, FaultKind::Panic).unwrap();
                injected.fetch_add(1, Ordering::Relaxed);
                turn += 1;
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };

    let started = Instant::now();
    let mut retries = 0;
    // At least this many cycles, and on until the injector thread (run
    // whenever the scheduler lets it) has struck ten times.
    let cycles = 150;
    let mut i = 0;
    while i < cycles || injected.load(Ordering::Relaxed) < 10 {
        i += 1;
        let code = i % 100;
        let (executed, r1) = retried(|| {
            client.invoke(ExecuteAsync {
                cid: cid.into(),
                argv: vec!["sh".into(), "-c".into(), format!("exit {code}")],
                envv: vec![],
                working_directory: None,
                kuid: None,
                kgid: None,
                extra_kgids: None,
                capabilities: None,
                no_new_privileges: None,
                rlimits: None,
                terminal: false,
                console_socket: None,
                preserve_fds: 0,
                caller_spawner: false,
                fds: Fds(dev_null()),
            })
        });
        let (status, r2) = retried(|| {
            client.invoke(WaitPid {
                cid: cid.into(),
                pid: executed.pid,
            })
        });
        assert_eq!(status.status, (code as u32) << 8, "cycle {i}: exit {code}");
        retries += r1 + r2;
    }
    stop.store(true, Ordering::Relaxed);
    injector.join().unwrap();
    let faults = injected.load(Ordering::Relaxed);
    assert!(
        faults >= 10,
        "only {faults} faults were injected in {:?}",
        started.elapsed()
    );

    // Both actors were restarted once per fault and serve again (the
    // last restart may still be under way: waited for).
    let settled = || {
        let stacks = client.stacks().unwrap();
        let ours: Vec<_> = stacks
            .actors
            .into_iter()
            .filter(|a| a.name == "ContainerManager" || a.name == "Reaper")
            .collect();
        let running = ours.iter().all(|a| a.state == ActorState::Running);
        (running, ours.iter().map(|a| a.restarts).sum::<u32>())
    };
    let deadline = Instant::now() + PATIENCE;
    while settled() != (true, faults) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(settled(), (true, faults), "one restart per injected panic");

    // The root container survived all of it, and its status is delivered.
    let (_, _) = retried(|| {
        client.invoke(Signal {
            cid: cid.into(),
            signo: 9,
            pid: 0,
            mode: SignalMode::Process,
        })
    });
    let (status, _) = retried(|| client.invoke(Wait { cid: cid.into() }));
    assert_eq!(status.status, 9);
    let deadline = Instant::now() + PATIENCE;
    while !zombies_of(sv.pid()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        zombies_of(sv.pid()),
        Vec::<String>::new(),
        "zombies left behind"
    );
    // A graceful stop removes the container's cgroups after all that.
    drop(client);
    let exit = sv.stop_with(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(exit.code(), Some(0));
    let left: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("/sys/fs/cgroup")
        .flatten()
        // The harness boots sandbox "test".
        .map(|h| h.path().join("sandvisor").join("test").join(cid))
        .filter(|d| d.exists())
        .collect();
    assert_eq!(left, Vec::<std::path::PathBuf>::new(), "cgroups left");
    eprintln!("{cycles} exec+wait cycles, {faults} panics injected, {retries} calls retried");
}
