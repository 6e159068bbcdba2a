//! The real clients drive sandvisor as their OCI runtime, as a user would
//! plug it in: podman (`--runtime PATH`, containers.conf's
//! `runtime_supports_json`) and docker (daemon.json's `runtimes`, through
//! its containerd and the io.containerd.runc.v2 shim), each from Debian's
//! packages and in private state, with images imported from a static
//! busybox (no registry).
//!
//! Every step runs twice: with runc, which proves the harness and the
//! scenario, and with sandvisor. A test is one (client, runtime, step):
//! `docker::sandvisor::oom_kill_reported` names what fails. Each test has
//! its own podman store or its own dockerd (half a second to start), so
//! tests run in parallel, clean up after themselves when they fail (the
//! guards' Drop), and end by checking that nothing of their containers is
//! left: state entries, mounts, cgroups, processes.
//!
//! Needs root, podman, conmon, catatonit, docker.io (dockerd, containerd,
//! docker-init) and busybox-static: test.sh installs them.
// A test crate: a failed unwrap fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "clients/docker.rs"]
mod docker_daemon;
#[path = "clients/engine.rs"]
mod engine;
#[path = "clients/host.rs"]
mod host;
#[path = "clients/podman.rs"]
mod podman_store;
#[path = "clients/pty.rs"]
mod pty;
#[path = "clients/specific.rs"]
mod specific;
#[path = "clients/steps.rs"]
mod steps;

/// One test per step, for each runtime: `CLIENT::RUNTIME::STEP` runs
/// `STEP(&CLIENT_ENV(RUNTIME))`.
macro_rules! per_runtime {
    ($env:path; $($step:ident => $function:path),* $(,)?) => {
        mod runc {
            $(
                #[test]
                fn $step() {
                    let env = $env(crate::host::Runtime::Runc);
                    $function(&env);
                }
            )*
        }
        mod sandvisor {
            $(
                #[test]
                fn $step() {
                    let env = $env(crate::host::Runtime::Sandvisor);
                    $function(&env);
                }
            )*
        }
    };
}

mod docker {
    per_runtime! {
        crate::docker_daemon::Docker::start;
        run_output_and_exit_code => crate::steps::run_output_and_exit_code,
        run_interactive_on_a_pty => crate::steps::run_interactive_on_a_pty,
        exec_interactive_on_a_pty => crate::steps::exec_interactive_on_a_pty,
        detached_lifecycle => crate::steps::detached_lifecycle,
        memory_limit_visible_inside => crate::steps::memory_limit_visible_inside,
        oom_kill_reported => crate::specific::docker_oom_kill_reported,
        read_only_root => crate::steps::read_only_root,
        tmpfs => crate::steps::tmpfs,
        cap_drop_all => crate::steps::cap_drop_all,
        user => crate::steps::user,
        bind_mount => crate::steps::bind_mount,
        sysctl => crate::steps::sysctl,
        init => crate::steps::init,
        ipc_and_pid_of_another_container => crate::specific::docker_ipc_and_pid_of_another_container,
    }

    /// A daemon of its own, whose exec root is long.
    mod long_exec_root {
        #[test]
        fn runc() {
            crate::specific::docker_long_exec_root(crate::host::Runtime::Runc);
        }

        #[test]
        fn sandvisor() {
            crate::specific::docker_long_exec_root(crate::host::Runtime::Sandvisor);
        }
    }
}

mod podman {
    per_runtime! {
        crate::podman_store::Podman::new;
        run_output_and_exit_code => crate::steps::run_output_and_exit_code,
        run_interactive_on_a_pty => crate::steps::run_interactive_on_a_pty,
        exec_interactive_on_a_pty => crate::steps::exec_interactive_on_a_pty,
        detached_lifecycle => crate::steps::detached_lifecycle,
        memory_limit_visible_inside => crate::steps::memory_limit_visible_inside,
        read_only_root => crate::steps::read_only_root,
        tmpfs => crate::steps::tmpfs,
        cap_drop_all => crate::steps::cap_drop_all,
        user => crate::steps::user,
        bind_mount => crate::steps::bind_mount,
        sysctl => crate::steps::sysctl,
        init => crate::steps::init,
        pod_shares_net_ipc_uts => crate::specific::podman_pod_shares_net_ipc_uts,
    }
}
