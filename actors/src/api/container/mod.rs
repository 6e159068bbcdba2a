//! `containerManager.*`: containers, exec, wait, signals, processes.
//!
//! Argument shapes follow gVisor's (`runsc/boot/controller.go`) in
//! snake_case; descriptors travel in the frame, in the documented order.
//!
//! Each concern has a file: `start` (the root and subcontainers, a held
//! container's start, a subcontainer's destruction), `exec`, `wait` (wait,
//! wait_pid, the lifecycle state), `signal` (signals, process listing) and
//! `resources` (pause, resume, update, the stats event). `carries_fds!`,
//! defined here, gives the types that carry descriptors their
//! [`CarriesFds`](super::CarriesFds) impl, beside each of them.

fn is_zero(n: &u32) -> bool {
    *n == 0
}

macro_rules! carries_fds {
    ($($ty:ty),+) => {
        $(
            impl CarriesFds for $ty {
                fn take_fds(&mut self) -> Vec<OwnedFd> {
                    self.fds.take()
                }

                fn attach_fds(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
                    self.fds = Fds(fds);
                    Ok(())
                }
            }
        )+
    };
}

mod exec;
mod resources;
mod signal;
mod start;
mod wait;

pub use self::exec::{ExecCapabilities, ExecRlimit, ExecuteAsync, Executed};
pub use self::resources::{
    BlkioEntry, BlkioStats, CpuStats, CpuUsage, Event, EventReply, MemoryEntry, MemoryStats,
    NetworkInterface, Pause, PidsStats, Resume, Stats, Throttling, Update,
};
pub use self::signal::{ProcessInfo, ProcessList, Processes, Signal, SignalMode};
pub use self::start::{
    CreateSubcontainer, DestroySubcontainer, Start, StartRoot, StartSubcontainer, Started,
};
pub use self::wait::{
    ContainerRuntimeState, RuntimeState, RuntimeStatus, Wait, WaitPid, WaitStatusReply,
};
