//! Usage: the sandbox's memory use, by call (`Usage.Collect`) and through
//! a shared page (`Usage.UsageFD`).
//!
//! The figures come from the sandbox's memory cgroup (`<cgroup_parent>`
//! in the hierarchy with the memory controller), whose v1 `total_` and
//! v2 memory.stat figures count every container under it; a container's
//! own come from its cgroup, which the ContainerManager names (a spec's
//! `cgroupsPath` may put it elsewhere). The page is made, and refreshed
//! every [`REFRESH_INTERVAL`] from this actor's context, only once a
//! monitor asks for it: until then it costs nothing.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{ActorFutureExt, AsyncContext, Context, Recipient, WrapFuture};
use slog::{info, warn, Logger};
use thiserror::Error;

use super::container_manager::{ContainerCgroups, ContainerListing};
use crate::api::usage::{Collect, ContainerMemoryUsage, MemoryUsage, UsageFd, UsageFdReply};
use crate::api::Fds;
use crate::supervision::{
    guarded, handles, supervised_actor, ActorStatus, Reply, Subsystem, SupervisionError,
};
use crate::sys::cgroup::{controller_dir, enable_v2_controller, write_control, Hierarchy};
use crate::sys::cgroup_stats::{memory_breakdown, MemoryBreakdown};
use crate::sys::process;
use crate::sys::usage_page::{Figures, PageError, UsagePage, PAGE_LEN, VERSION};
use crate::wire::RpcError;

/// How often the usage page is rewritten once handed out: a monitor
/// polling it sees figures at most this old, for four cgroup file reads
/// per period.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(250);

/// Why the memory use could not be read.
#[derive(Debug, Error)]
pub enum UsageError {
    /// No hierarchy has the memory controller.
    #[error("no cgroup hierarchy of this host has the memory controller")]
    NoMemoryController,
    /// The sandbox's cgroup exists but has no memory files.
    #[error(
        "cgroup {0} has no memory.stat: on cgroup v2 its parent must enable the memory controller"
    )]
    NoMemoryFiles(String),
    /// A cgroup file could not be read.
    #[error("read the memory use of cgroup {dir}: {source}")]
    Read {
        /// The cgroup directory.
        dir: String,
        /// The error.
        source: io::Error,
    },
    /// /proc/self/statm could not be read.
    #[error("read the supervisor's resident set size: {0}")]
    Rss(io::Error),
    /// The usage page could not be made or handed out.
    #[error(transparent)]
    Page(#[from] PageError),
}

/// The sandbox's cgroup in the memory controller's hierarchy.
#[derive(Debug, Clone)]
struct MemoryCgroup {
    dir: PathBuf,
    v1: bool,
}

/// Serves the usage methods and keeps the usage page.
pub struct Usage {
    status: Arc<ActorStatus>,
    logger: Logger,
    hierarchies: Vec<Hierarchy>,
    /// The sandbox's cgroup, relative to each hierarchy's root.
    parent: PathBuf,
    /// `None` when no hierarchy has the memory controller.
    memory: Option<MemoryCgroup>,
    manager: Recipient<ContainerCgroups>,
    manager_status: Arc<ActorStatus>,
    /// Made by the first UsageFD; kept across restarts, as the
    /// descriptors handed out point to it.
    page: Option<UsagePage>,
    /// The last refresh failed (logged once, not every period).
    refresh_failing: bool,
    /// The v2 memory controller was enabled for the sandbox (or need not be).
    delegated: bool,
}

impl Usage {
    /// The actor, for the sandbox whose cgroup is `parent` in each of
    /// `hierarchies`; `manager` lists the containers' cgroups.
    pub fn new(
        status: Arc<ActorStatus>,
        logger: Logger,
        hierarchies: Vec<Hierarchy>,
        parent: PathBuf,
        manager: Recipient<ContainerCgroups>,
        manager_status: Arc<ActorStatus>,
    ) -> Self {
        let dirs: Vec<PathBuf> = hierarchies.iter().map(|h| h.mount.join(&parent)).collect();
        let memory = controller_dir(&hierarchies, &dirs, "memory").map(|(dir, v2)| MemoryCgroup {
            dir: dir.clone(),
            v1: !v2,
        });
        Usage {
            status,
            logger,
            hierarchies,
            parent,
            memory,
            manager,
            manager_status,
            page: None,
            refresh_failing: false,
            delegated: false,
        }
    }

    /// On cgroup v2 a cgroup has memory files only where its parent
    /// enables the controller: enabling it for the sandbox's cgroup and
    /// its children before they fill means every page is charged where
    /// Collect looks (a page keeps the cgroup it was first charged to).
    fn delegate_v2_memory(&self) -> io::Result<()> {
        let Some(memory) = self.memory.as_ref().filter(|m| !m.v1) else {
            return Ok(());
        };
        let Some(mount) = self
            .hierarchies
            .iter()
            .find(|h| h.v1_controllers.is_none())
            .map(|h| &h.mount)
        else {
            return Ok(());
        };
        // The ContainerManager makes it too (create_dir_all), and removes
        // it when the sandbox ends.
        std::fs::create_dir_all(&memory.dir)?;
        enable_v2_controller(mount, &self.parent, "memory")?;
        let enabled = std::fs::read_to_string(memory.dir.join("cgroup.subtree_control"))?;
        if !enabled.split_whitespace().any(|c| c == "memory") {
            write_control(&memory.dir, "cgroup.subtree_control", "+memory")?;
        }
        Ok(())
    }

    /// The sandbox-wide figures: zero while it has no cgroup yet (no
    /// container was made, nothing is charged).
    fn sandbox_figures(&self) -> Result<MemoryBreakdown, UsageError> {
        let memory = self.memory.as_ref().ok_or(UsageError::NoMemoryController)?;
        match memory_breakdown(&memory.dir, memory.v1) {
            Ok(figures) => Ok(figures),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if memory.dir.exists() {
                    Err(UsageError::NoMemoryFiles(memory.dir.display().to_string()))
                } else {
                    Ok(MemoryBreakdown::default())
                }
            }
            Err(source) => Err(read_error(&memory.dir, source)),
        }
    }

    /// A container's own figures; `None` when its cgroup has no memory
    /// files (destroyed since it was listed, or a v2 cgroup outside the
    /// sandbox's whose parent does not enable the controller).
    fn container_figures(
        &self,
        cid: &str,
        dirs: &[PathBuf],
    ) -> Result<Option<ContainerMemoryUsage>, UsageError> {
        let Some((dir, v2)) = controller_dir(&self.hierarchies, dirs, "memory") else {
            return Ok(None);
        };
        let figures = match memory_breakdown(dir, !v2) {
            Ok(figures) => figures,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(read_error(dir, source)),
        };
        let in_sandbox_cgroup = self
            .memory
            .as_ref()
            .is_some_and(|sandbox| dir.starts_with(&sandbox.dir));
        Ok(Some(ContainerMemoryUsage {
            id: cid.to_owned(),
            total: figures.total,
            anonymous: figures.anonymous,
            page_cache: figures.page_cache,
            mapped: figures.mapped,
            shmem: figures.shmem,
            kernel: figures.kernel,
            in_sandbox_cgroup,
        }))
    }

    /// The reply to Collect; with `containers` (id and cgroup directories
    /// of each), the per-container figures too.
    fn memory_usage(
        &self,
        containers: Option<&[ContainerListing]>,
    ) -> Result<MemoryUsage, UsageError> {
        let Figures {
            memory: figures,
            supervisor_rss,
        } = self.page_figures()?;
        let containers = match containers {
            None => None,
            Some(list) => {
                let mut out = Vec::with_capacity(list.len());
                for c in list {
                    out.extend(self.container_figures(&c.id, &c.dirs)?);
                }
                Some(out)
            }
        };
        Ok(MemoryUsage {
            total: figures.total,
            anonymous: figures.anonymous,
            page_cache: figures.page_cache,
            mapped: figures.mapped,
            shmem: figures.shmem,
            kernel: figures.kernel,
            supervisor_rss,
            containers,
        })
    }

    /// The sandbox-wide figures and the supervisor's RSS, as the page has them.
    fn page_figures(&self) -> Result<Figures, UsageError> {
        Ok(Figures {
            memory: self.sandbox_figures()?,
            supervisor_rss: process::own_rss().map_err(UsageError::Rss)?,
        })
    }

    fn collect(&mut self, req: Collect, _: &mut Context<Self>) -> Reply<Self, MemoryUsage> {
        if !req.full {
            return Reply::Now(self.memory_usage(None).map_err(Into::into));
        }
        let asked = self.manager.send(ContainerCgroups {
            ticket: self.manager_status.ticket(),
        });
        Reply::Later(Box::pin(asked.into_actor(self).map(|answer, act, _| {
            let containers = answer.map_err(|_| {
                RpcError::from(SupervisionError::Stopped {
                    actor: "ContainerManager",
                    message: "ContainerCgroups",
                })
            })??;
            act.memory_usage(Some(&containers)).map_err(Into::into)
        })))
    }

    fn usage_fd(&mut self, _: UsageFd, ctx: &mut Context<Self>) -> Result<UsageFdReply, RpcError> {
        let page = match self.page.take() {
            Some(page) => page,
            None => {
                // Figures first: a page that could never be filled is
                // refused rather than handed out blank.
                let figures = self.page_figures()?;
                let mut page = UsagePage::create().map_err(UsageError::from)?;
                page.publish(figures, unix_ns());
                self.keep_current(ctx);
                info!(self.logger, "usage page made"; "interval_ms" => REFRESH_INTERVAL.as_millis() as u64);
                page
            }
        };
        let fd = page.read_only_fd();
        self.page = Some(page);
        Ok(UsageFdReply {
            version: VERSION,
            size: PAGE_LEN as u64,
            interval_ms: REFRESH_INTERVAL.as_millis() as u64,
            fds: Fds(vec![fd.map_err(UsageError::from)?]),
        })
    }

    /// Refreshes the page every period, under the guard as a handler is
    /// (a panic restarts the actor, whose start arms this again).
    fn keep_current(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(REFRESH_INTERVAL, |act, ctx| {
            let ticket = act.status.ticket();
            let _ = guarded(act, ctx, "usage.refresh", ticket, |act, _| {
                act.refresh();
                Ok(())
            });
        });
    }

    fn refresh(&mut self) {
        let figures = self.page_figures();
        let Some(page) = self.page.as_mut() else {
            return;
        };
        match figures {
            Ok(figures) => {
                page.publish(figures, unix_ns());
                if std::mem::take(&mut self.refresh_failing) {
                    info!(self.logger, "usage page updated again");
                }
            }
            // The page keeps its last figures; their update time shows
            // monitors how old they are.
            Err(e) => {
                if !std::mem::replace(&mut self.refresh_failing, true) {
                    warn!(self.logger, "cannot update the usage page"; "error" => %e);
                }
            }
        }
    }
}

fn read_error(dir: &Path, source: io::Error) -> UsageError {
    UsageError::Read {
        dir: dir.display().to_string(),
        source,
    }
}

/// Now, in nanoseconds since the Unix epoch.
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Subsystem for Usage {
    fn status(&self) -> &Arc<ActorStatus> {
        &self.status
    }

    fn logger(&self) -> &Logger {
        &self.logger
    }

    fn on_start(&mut self, ctx: &mut Context<Self>) {
        if !self.delegated {
            self.delegated = true;
            if let Err(e) = self.delegate_v2_memory() {
                warn!(self.logger, "cannot enable the v2 memory controller for the sandbox's cgroup";
                    "cgroup" => %self.parent.display(), "error" => %e);
            }
        }
        // A restart drops the refresh with the old context.
        if self.page.is_some() {
            self.keep_current(ctx);
        }
    }
}

supervised_actor!(Usage);
handles!(Usage {
    Collect => collect,
    UsageFd => usage_fd,
});

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, OwnedFd};

    use actix::{Actor, Addr, Handler, Supervisor};

    use super::*;
    use crate::api::debug::FaultKind;
    use crate::supervision::{Call, Fault, RestartPolicy};
    use crate::sys::usage_page::PageReader;
    use crate::wire::ErrorCode;

    const MIB: u64 = 1 << 20;

    /// Answers ContainerCgroups with a fixed list.
    struct StubManager(Vec<(String, Vec<PathBuf>)>);

    impl Actor for StubManager {
        type Context = Context<Self>;
    }

    impl Handler<ContainerCgroups> for StubManager {
        type Result = Result<Vec<ContainerListing>, RpcError>;

        fn handle(&mut self, _: ContainerCgroups, _: &mut Context<Self>) -> Self::Result {
            Ok(self
                .0
                .iter()
                .map(|(id, dirs)| ContainerListing {
                    id: id.clone(),
                    state: "running",
                    dirs: dirs.clone(),
                })
                .collect())
        }
    }

    /// Writes a v1 memory cgroup holding `shmem` bytes of tmpfs.
    fn v1_cgroup(dir: &Path, shmem: u64) {
        std::fs::create_dir_all(dir).unwrap();
        let stat = format!(
            "cache 0\nrss 0\nshmem 0\ntotal_cache {}\ntotal_rss 8192\ntotal_shmem {shmem}\ntotal_mapped_file 4096\n",
            shmem + 4096
        );
        std::fs::write(dir.join("memory.stat"), stat).unwrap();
        std::fs::write(
            dir.join("memory.usage_in_bytes"),
            format!("{}\n", shmem + 20480),
        )
        .unwrap();
        std::fs::write(dir.join("memory.kmem.usage_in_bytes"), "8192\n").unwrap();
    }

    /// A memory hierarchy in a temporary directory, its sandbox cgroup
    /// `sandvisor/sb` and the usage actor over it.
    struct Fixture {
        mount: tempfile::TempDir,
        status: Arc<ActorStatus>,
        usage: Addr<Usage>,
    }

    impl Fixture {
        /// `containers` lists the containers' cgroups, given the mount.
        fn new(
            memory: bool,
            containers: impl FnOnce(&Path) -> Vec<(String, Vec<PathBuf>)>,
        ) -> Fixture {
            let mount = tempfile::tempdir().unwrap();
            let controllers = if memory { "memory" } else { "pids" };
            let hierarchies = vec![Hierarchy {
                mount: mount.path().to_path_buf(),
                root: "/".into(),
                v1_controllers: Some(vec![controllers.into()]),
            }];
            let status = ActorStatus::new("Usage", RestartPolicy::default());
            let manager_status = ActorStatus::new("ContainerManager", RestartPolicy::default());
            let manager = StubManager(containers(mount.path())).start().recipient();
            let usage = {
                let status = status.clone();
                Supervisor::start(move |_| {
                    Usage::new(
                        status,
                        crate::logging::discard(),
                        hierarchies,
                        "sandvisor/sb".into(),
                        manager,
                        manager_status,
                    )
                })
            };
            Fixture {
                mount,
                status,
                usage,
            }
        }

        fn dir(&self, relative: &str) -> PathBuf {
            self.mount.path().join(relative)
        }

        async fn collect(&self, full: bool) -> Result<MemoryUsage, RpcError> {
            let call = Call::new(Collect { full }, self.status.ticket());
            self.usage.send(call).await.unwrap()
        }

        async fn page(&self) -> Result<OwnedFd, RpcError> {
            let call = Call::new(UsageFd {}, self.status.ticket());
            let mut reply = self.usage.send(call).await.unwrap()?;
            assert_eq!(
                (reply.version, reply.size, reply.interval_ms),
                (1, 4096, 250)
            );
            Ok(reply.fds.take().remove(0))
        }
    }

    fn run(test: impl std::future::Future<Output = ()>) {
        actix_rt::System::new().block_on(test);
    }

    /// Waits until `done` holds, however late the actor's timer fires on a
    /// loaded machine; fails only after a minute.
    async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            actix_rt::time::sleep(REFRESH_INTERVAL / 10).await;
        }
    }

    #[test]
    fn usage_collect_reads_the_sandbox_cgroup_and_with_full_each_container_s() {
        run(async {
            let f = Fixture::new(true, |mount| {
                vec![
                    ("a".to_owned(), vec![mount.join("sandvisor/sb/a")]),
                    ("gone".to_owned(), vec![mount.join("sandvisor/sb/gone")]),
                    ("elsewhere".to_owned(), vec![mount.join("elsewhere/e")]),
                ]
            });

            // No container yet: no cgroup, nothing charged.
            let empty = f.collect(true).await.unwrap();
            assert_eq!((empty.total, empty.shmem), (0, 0));
            assert!(empty.supervisor_rss > 0);
            assert_eq!(empty.containers, Some(Vec::new()));

            v1_cgroup(&f.dir("sandvisor/sb"), 3 * MIB);
            v1_cgroup(&f.dir("sandvisor/sb/a"), MIB);
            v1_cgroup(&f.dir("elsewhere/e"), 2 * MIB);
            let cheap = f.collect(false).await.unwrap();
            assert_eq!(
                (cheap.total, cheap.anonymous, cheap.page_cache, cheap.mapped),
                (3 * MIB + 20480, 8192, 4096, 4096)
            );
            assert_eq!((cheap.shmem, cheap.kernel), (3 * MIB, 8192));
            assert_eq!(cheap.containers, None);

            let full = f.collect(true).await.unwrap();
            assert_eq!(full.shmem, 3 * MIB);
            let containers = full.containers.unwrap();
            let summary: Vec<(&str, u64, bool)> = containers
                .iter()
                .map(|c| (c.id.as_str(), c.shmem, c.in_sandbox_cgroup))
                .collect();
            // `gone` has no cgroup (destroyed after it was listed).
            assert_eq!(
                summary,
                vec![("a", MIB, true), ("elsewhere", 2 * MIB, false)]
            );
            assert_eq!(containers[0].total, MIB + 20480);
        });
    }

    #[test]
    fn usage_on_v2_enables_the_memory_controller_for_the_sandbox_and_its_children() {
        // What cgroupfs shows of a v2 hierarchy: each directory's
        // controllers, none enabled for children yet.
        let mount = tempfile::tempdir().unwrap();
        for dir in ["", "sandvisor", "sandvisor/sb"] {
            let dir = mount.path().join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), "pids\n").unwrap();
        }
        let hierarchies = vec![Hierarchy {
            mount: mount.path().to_path_buf(),
            root: "/".into(),
            v1_controllers: None,
        }];
        run(async {
            let status = ActorStatus::new("Usage", RestartPolicy::default());
            let manager = StubManager(Vec::new()).start().recipient();
            let usage = Usage::new(
                status,
                crate::logging::discard(),
                hierarchies,
                "sandvisor/sb".into(),
                manager,
                ActorStatus::new("ContainerManager", RestartPolicy::default()),
            );
            usage.delegate_v2_memory().unwrap();
        });
        for dir in ["", "sandvisor", "sandvisor/sb"] {
            let control = mount.path().join(dir).join("cgroup.subtree_control");
            // cgroupfs would list it; the plain file holds what was written.
            assert_eq!(
                std::fs::read_to_string(control).unwrap(),
                "+memory",
                "{dir:?}"
            );
        }
    }

    #[test]
    fn usage_without_a_memory_controller_is_unsupported_and_makes_no_page() {
        run(async {
            let f = Fixture::new(false, |_| Vec::new());
            let refused = f.collect(false).await.unwrap_err();
            assert_eq!(refused.code, ErrorCode::Unsupported);
            assert_eq!(
                refused.message,
                "no cgroup hierarchy of this host has the memory controller"
            );
            assert_eq!(f.page().await.unwrap_err().code, ErrorCode::Unsupported);
        });
    }

    #[test]
    fn usage_page_is_kept_current_by_the_actor() {
        run(async {
            let f = Fixture::new(true, |_| Vec::new());
            v1_cgroup(&f.dir("sandvisor/sb"), 3 * MIB);
            let fd = f.page().await.unwrap();
            let reader = PageReader::open(fd.as_fd()).unwrap();
            let first = reader.read().unwrap();
            assert_eq!(first.sequence, 2);
            assert_eq!(first.figures.memory.shmem, 3 * MIB);
            assert!(first.figures.supervisor_rss > 0);

            v1_cgroup(&f.dir("sandvisor/sb"), 5 * MIB);
            eventually("the page shows the new figures", || {
                reader.read().unwrap().figures.memory.shmem == 5 * MIB
            })
            .await;
            let later = reader.read().unwrap();
            assert!(later.sequence > first.sequence, "{later:?}");
            assert_eq!(later.sequence % 2, 0);
            assert!(later.updated_unix_ns > first.updated_unix_ns);
            assert_eq!(later.figures.memory.shmem, 5 * MIB);

            // A second caller gets the same page, not a new one.
            let again = f.page().await.unwrap();
            let inode = |fd: &OwnedFd| nix::sys::stat::fstat(fd).unwrap().st_ino;
            assert_eq!(inode(&again), inode(&fd));

            // A restart keeps the page and rearms its refresh.
            f.usage.do_send(Fault {
                kind: FaultKind::Panic,
                ticket: f.status.ticket(),
            });
            eventually("the actor restarts", || f.status.restarts() == 1).await;
            let before = reader.read().unwrap().sequence;
            eventually("the restarted actor refreshes the page", || {
                reader.read().unwrap().sequence > before
            })
            .await;
            assert_eq!(f.status.restarts(), 1);
            let after_restart = f.page().await.unwrap();
            assert_eq!(inode(&after_restart), inode(&fd));
        });
    }
}
