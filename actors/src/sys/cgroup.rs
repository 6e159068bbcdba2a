//! Cgroup hierarchies: finding them (v1, v2, or hybrid), creating a
//! container's cgroup in each, and removing it.
//!
//! Resource control is the Cgroups actor's concern; this module gives every
//! container a cgroup of its own in every hierarchy, which its processes
//! (the init and everything exec'd) join.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::sys::mountinfo::unescape;

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// Its root inside the cgroup namespace, as mountinfo gives it (usually `/`).
    pub root: PathBuf,
    /// `None` for cgroup v2; the controllers (or `name=...`) for v1.
    pub v1_controllers: Option<Vec<String>>,
}

impl Hierarchy {
    /// Whether this is a v1 hierarchy with `controller`.
    pub fn has_v1(&self, controller: &str) -> bool {
        self.v1_controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c == controller))
    }
}

/// The directory (of `dirs`, one per hierarchy) in the v1 hierarchy that
/// has `controller`.
pub fn v1_dir<'a>(
    hierarchies: &[Hierarchy],
    dirs: &'a [PathBuf],
    controller: &str,
) -> Option<&'a PathBuf> {
    hierarchies
        .iter()
        .zip(dirs)
        .find(|(h, _)| h.has_v1(controller))
        .map(|(_, d)| d)
}

/// The directory (of `dirs`, one per hierarchy) in the v2 hierarchy.
pub fn v2_dir<'a>(hierarchies: &[Hierarchy], dirs: &'a [PathBuf]) -> Option<&'a PathBuf> {
    hierarchies
        .iter()
        .zip(dirs)
        .find(|(h, _)| h.v1_controllers.is_none())
        .map(|(_, d)| d)
}

/// Where control files of `controller` go: the directory in the v1
/// hierarchy that has it, else the v2 one, and whether that is v2 (`None`:
/// the host has neither).
pub fn controller_dir<'a>(
    hierarchies: &[Hierarchy],
    dirs: &'a [PathBuf],
    controller: &str,
) -> Option<(&'a PathBuf, bool)> {
    match v1_dir(hierarchies, dirs, controller) {
        Some(dir) => Some((dir, false)),
        None => v2_dir(hierarchies, dirs).map(|dir| (dir, true)),
    }
}

/// Which layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified (v2) hierarchy.
    V2,
    /// v1 controllers with a v2 hierarchy beside them (often with no controllers).
    Hybrid,
}

/// Parses /proc/self/mountinfo into the cgroup hierarchies.
pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        if fields.len() < 5 || rfields.len() < 3 {
            continue;
        }
        let (root, mount) = (unescape(fields[3]), unescape(fields[4]));
        match rfields[0] {
            "cgroup2" => out.push(Hierarchy {
                mount: PathBuf::from(mount),
                root: PathBuf::from(root),
                v1_controllers: None,
            }),
            "cgroup" => {
                let known = [
                    "cpu",
                    "cpuacct",
                    "cpuset",
                    "memory",
                    "devices",
                    "freezer",
                    "blkio",
                    "pids",
                    "net_cls",
                    "net_prio",
                    "perf_event",
                    "hugetlb",
                    "rdma",
                    "misc",
                ];
                let controllers: Vec<String> = rfields[2]
                    .split(',')
                    .filter(|o| known.contains(o) || o.starts_with("name="))
                    .map(str::to_owned)
                    .collect();
                if !controllers.is_empty() {
                    out.push(Hierarchy {
                        mount: PathBuf::from(mount),
                        root: PathBuf::from(root),
                        v1_controllers: Some(controllers),
                    });
                }
            }
            _ => {}
        }
    }
    // The same hierarchy may be mounted twice (bind mounts): keep the first.
    let mut seen = Vec::new();
    out.retain(|h| {
        let key = h.v1_controllers.clone();
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    out
}

/// The hierarchies of this host.
pub fn hierarchies() -> io::Result<Vec<Hierarchy>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// The layout the hierarchies make.
pub fn layout(hierarchies: &[Hierarchy]) -> Option<Layout> {
    let v1 = hierarchies.iter().any(|h| h.v1_controllers.is_some());
    let v2 = hierarchies.iter().any(|h| h.v1_controllers.is_none());
    match (v1, v2) {
        (true, true) => Some(Layout::Hybrid),
        (true, false) => Some(Layout::V1),
        (false, true) => Some(Layout::V2),
        (false, false) => None,
    }
}

/// Checks a cgroup path (relative to the hierarchy roots) stays inside them.
pub fn checked_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// A container's cgroup: one directory per hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// The directories, created.
    pub dirs: Vec<PathBuf>,
    /// The one of them in the v2 hierarchy, if the host has it: processes
    /// are cloned into it (`CLONE_INTO_CGROUP`) rather than moved.
    pub unified: Option<PathBuf>,
    /// Its path relative to each hierarchy's root.
    pub relative: PathBuf,
}

impl ContainerCgroup {
    /// Creates `relative` in every hierarchy (parents too).
    pub fn create(hierarchies: &[Hierarchy], relative: &Path) -> io::Result<ContainerCgroup> {
        let mut dirs = Vec::new();
        let mut unified = None;
        for h in hierarchies {
            let dir = h.mount.join(relative);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                let created = ContainerCgroup {
                    dirs,
                    unified,
                    relative: relative.to_path_buf(),
                };
                let _ = created.remove(Duration::ZERO);
                return Err(io::Error::new(
                    e.kind(),
                    format!("create cgroup {}: {e}", dir.display()),
                ));
            }
            if h.v1_controllers
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c == "cpuset"))
            {
                inherit_cpuset(&h.mount, relative)?;
            }
            if h.v1_controllers.is_none() {
                unified = Some(dir.clone());
            }
            dirs.push(dir);
        }
        Ok(ContainerCgroup {
            dirs,
            unified,
            relative: relative.to_path_buf(),
        })
    }

    /// Renames every directory to `name` beside it (v1 hierarchies allow
    /// it, v2 does not), processes and all; on a failure the renamed ones
    /// are put back.
    pub fn rename(&self, name: &str) -> io::Result<ContainerCgroup> {
        let target = |dir: &Path| dir.with_file_name(name);
        for (done, dir) in self.dirs.iter().enumerate() {
            if let Err(e) = std::fs::rename(dir, target(dir)) {
                for back in &self.dirs[..done] {
                    let _ = std::fs::rename(target(back), back);
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("rename cgroup {} to {name}: {e}", dir.display()),
                ));
            }
        }
        Ok(ContainerCgroup {
            dirs: self.dirs.iter().map(|d| target(d)).collect(),
            unified: self.unified.as_deref().map(target),
            relative: self.relative.with_file_name(name),
        })
    }

    /// The `cgroup.procs` files of the v1 hierarchies (a process joins
    /// those by writing itself there).
    pub fn v1_procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .filter(|d| Some(*d) != self.unified.as_ref())
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// The pids in the cgroup (from the first hierarchy).
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let Some(dir) = self.dirs.first() else {
            return Ok(Vec::new());
        };
        let text = std::fs::read_to_string(dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Removes the directories, retrying while they are busy (processes
    /// still exiting) for up to `patience`.
    pub fn remove(&self, patience: Duration) -> io::Result<()> {
        let deadline = Instant::now() + patience;
        for dir in self.dirs.iter().rev() {
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("remove cgroup {}: {e}", dir.display()),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

/// One device cgroup rule, in the v1 `devices.allow`/`devices.deny` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (or deny).
    pub allow: bool,
    /// `a`, `c` or `b`.
    pub kind: char,
    /// Major number; `None` for any.
    pub major: Option<u64>,
    /// Minor number; `None` for any.
    pub minor: Option<u64>,
    /// Some of `r`, `w`, `m`.
    pub access: String,
}

impl DeviceRule {
    /// The line written to `devices.allow` or `devices.deny`.
    pub fn line(&self) -> String {
        let number = |n: Option<u64>| n.map_or("*".to_owned(), |n| n.to_string());
        if self.kind == 'a' {
            return "a".to_owned();
        }
        format!(
            "{} {}:{} {}",
            self.kind,
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

/// Applies device rules, in order, to a v1 devices cgroup directory.
pub fn write_device_rules(dir: &Path, rules: &[DeviceRule]) -> io::Result<()> {
    for rule in rules {
        let file = dir.join(if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        });
        std::fs::write(&file, rule.line()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("write {:?} to {}: {e}", rule.line(), file.display()),
            )
        })?;
    }
    Ok(())
}

/// Writes `value` to control file `file` of cgroup `dir`; the kernel's
/// refusal names the file and the value.
pub fn write_control(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("write {value:?} to {}: {e}", path.display()),
        )
    })
}

/// Enables v2 `controller` for `relative` (under the hierarchy mounted at
/// `mount`): in the `cgroup.subtree_control` of each of its ancestors, top
/// down, where it is not enabled yet.
pub fn enable_v2_controller(mount: &Path, relative: &Path, controller: &str) -> io::Result<()> {
    let mut dir = mount.to_path_buf();
    let depth = relative.components().count();
    for component in relative
        .components()
        .take(depth.saturating_sub(1))
        .map(Some)
        .chain([None])
    {
        let available = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
        if !available.split_whitespace().any(|c| c == controller) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the {controller} controller is not available in cgroup {}",
                    dir.display()
                ),
            ));
        }
        let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control"))?;
        if !enabled.split_whitespace().any(|c| c == controller) {
            write_control(&dir, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
        match component {
            Some(c) => dir.push(c),
            None => break,
        }
    }
    Ok(())
}

/// The directory of process `pid`'s cgroup for `controller` (v1 where a v1
/// hierarchy has it, else v2), and whether it is v2.
pub fn controller_dir_of(
    hierarchies: &[Hierarchy],
    pid: i32,
    controller: &str,
) -> io::Result<Option<(PathBuf, bool)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let v1 = hierarchies.iter().find(|h| h.has_v1(controller));
    let v2 = hierarchies.iter().find(|h| h.v1_controllers.is_none());
    Ok(match (v1, v2) {
        (Some(h), _) => dir_in(h, &text).map(|dir| (dir, false)),
        (None, Some(h)) => dir_in(h, &text).map(|dir| (dir, true)),
        (None, None) => None,
    })
}

/// The directory of hierarchy `h` that a `/proc/PID/cgroup` text names.
fn dir_in(h: &Hierarchy, proc_cgroup: &str) -> Option<PathBuf> {
    let path = proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match &h.v1_controllers {
            None => controllers.is_empty(),
            Some(names) => {
                let listed: Vec<&str> = controllers.split(',').collect();
                names.iter().all(|n| listed.contains(&n.as_str()))
            }
        };
        matches.then_some(path)
    })?;
    Some(h.mount.join(path.trim_start_matches('/')))
}

/// Whether `controller` is a v1 controller on this host (else it is
/// looked for in v2).
pub fn is_v1_controller(hierarchies: &[Hierarchy], controller: &str) -> bool {
    hierarchies.iter().any(|h| h.has_v1(controller))
}

/// Freezes (`frozen`) or thaws the cgroup whose directories (one per
/// hierarchy, in `hierarchies`' order) are `dirs`: through the v1 freezer
/// when the host has it, else v2's `cgroup.freeze`. Returns once the kernel
/// reports it done, or fails after `patience`.
pub fn set_frozen(
    hierarchies: &[Hierarchy],
    dirs: &[PathBuf],
    frozen: bool,
    patience: Duration,
) -> io::Result<()> {
    let v1 = v1_dir(hierarchies, dirs, "freezer");
    let v2 = v2_dir(hierarchies, dirs).filter(|d| d.join("cgroup.freeze").exists());
    let deadline = Instant::now() + patience;
    match (v1, v2) {
        (Some(dir), _) => {
            let wanted = if frozen { "FROZEN" } else { "THAWED" };
            loop {
                // Writing again moves a FREEZING cgroup on, as runc does.
                write_control(dir, "freezer.state", wanted)?;
                let state = std::fs::read_to_string(dir.join("freezer.state"))?;
                if state.trim() == wanted {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{} stayed {} instead of {wanted}",
                            dir.join("freezer.state").display(),
                            state.trim()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        (None, Some(dir)) => {
            write_control(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
            let wanted = if frozen { "frozen 1" } else { "frozen 0" };
            loop {
                let events = std::fs::read_to_string(dir.join("cgroup.events"))?;
                if events.lines().any(|l| l.trim() == wanted) {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{} never said {wanted:?}", dir.join("cgroup.events").display()),
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        (None, None) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no freezer: the host has neither the v1 freezer controller nor cgroup v2's cgroup.freeze",
        )),
    }
}

/// A new v1 cpuset cgroup starts with empty cpus and mems: copy them down
/// from the nearest ancestor that has them.
fn inherit_cpuset(mount: &Path, relative: &Path) -> io::Result<()> {
    let mut dir = mount.to_path_buf();
    for c in relative.components() {
        let parent = dir.clone();
        dir.push(c);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            if current.trim().is_empty() {
                let inherited = std::fs::read_to_string(parent.join(file))?;
                std::fs::write(dir.join(file), inherited.trim())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
29 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:12 - cgroup cgroup rw,cpu
30 25 0:27 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/systemd rw,relatime shared:14 - cgroup cgroup rw,xattr,name=systemd
40 25 0:27 / /mnt/again rw,relatime shared:13 - cgroup cgroup rw,memory
";

    #[test]
    fn finds_hybrid_hierarchies_once_each() {
        let h = parse_mountinfo(HYBRID);
        let mounts: Vec<&str> = h.iter().map(|h| h.mount.to_str().unwrap()).collect();
        assert_eq!(
            mounts,
            [
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/systemd"
            ]
        );
        assert_eq!(h[3].v1_controllers, Some(vec!["name=systemd".to_string()]));
        assert_eq!(layout(&h), Some(Layout::Hybrid));
        assert_eq!(layout(&h[..1]), Some(Layout::V2));
        assert_eq!(layout(&h[1..]), Some(Layout::V1));
    }

    #[test]
    fn relative_paths_cannot_escape() {
        assert_eq!(
            checked_relative(Path::new("/a/b")),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(
            checked_relative(Path::new("a/./b")),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(checked_relative(Path::new("/a/../../etc")), None);
        assert_eq!(checked_relative(Path::new("/")), None);
    }

    #[test]
    fn creates_and_removes_in_every_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let hs: Vec<Hierarchy> = [("one", Some(vec!["pids".to_owned()])), ("two", None)]
            .into_iter()
            .map(|(n, v1_controllers)| Hierarchy {
                mount: tmp.path().join(n),
                root: PathBuf::from("/"),
                v1_controllers,
            })
            .collect();
        let cg = ContainerCgroup::create(&hs, Path::new("sv/box/c1")).unwrap();
        assert_eq!(
            cg.v1_procs_files(),
            vec![tmp.path().join("one/sv/box/c1/cgroup.procs")]
        );
        assert_eq!(cg.unified, Some(tmp.path().join("two/sv/box/c1")));
        assert!(tmp.path().join("one/sv/box/c1").is_dir());
        cg.remove(Duration::ZERO).unwrap();
        assert!(!tmp.path().join("one/sv/box/c1").exists());
        let spare = ContainerCgroup::create(&hs, Path::new("sv/box/spare@1")).unwrap();
        let renamed = spare.rename("c2").unwrap();
        assert_eq!(
            renamed.dirs,
            vec![
                tmp.path().join("one/sv/box/c2"),
                tmp.path().join("two/sv/box/c2")
            ]
        );
        assert!(!tmp.path().join("one/sv/box/spare@1").exists());
        // A failed rename puts back what it had moved.
        std::fs::create_dir_all(tmp.path().join("two/sv/box/c3/busy")).unwrap();
        assert!(renamed.rename("c3").is_err());
        assert!(tmp.path().join("one/sv/box/c2").is_dir());
        assert!(!tmp.path().join("one/sv/box/c3").exists());
        assert!(
            tmp.path().join("one/sv/box").exists(),
            "only the container's own directory goes"
        );
    }

    #[test]
    fn a_v2_controller_is_enabled_in_every_ancestor_top_down() {
        let mount = tempfile::tempdir().unwrap();
        let relative = Path::new("a/b/c");
        let mut dir = mount.path().to_path_buf();
        for part in ["", "a", "b", "c"] {
            dir.push(part);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cgroup.controllers"), "cpu memory\n").unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        // Already enabled at the top: left alone.
        std::fs::write(mount.path().join("cgroup.subtree_control"), "cpu\n").unwrap();
        enable_v2_controller(mount.path(), relative, "cpu").unwrap();
        let control = |p: &str| read(mount.path().join(p).join("cgroup.subtree_control"));
        assert_eq!(control(""), "cpu\n");
        assert_eq!(control("a"), "+cpu");
        assert_eq!(control("a/b"), "+cpu");
        // The container's own cgroup gets the files, not the switch.
        assert_eq!(control("a/b/c"), "");
        let missing = enable_v2_controller(mount.path(), relative, "io").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::Unsupported);
        assert!(
            missing
                .to_string()
                .contains("the io controller is not available"),
            "{missing}"
        );
    }

    fn read(path: impl AsRef<Path>) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    /// A v1 hierarchy of `controller` at `base/controller` and a v2 one at
    /// `base/unified`.
    fn v1_and_v2(base: &Path, controller: &str) -> [Hierarchy; 2] {
        [
            Hierarchy {
                mount: base.join(controller),
                root: "/".into(),
                v1_controllers: Some(vec![controller.into()]),
            },
            Hierarchy {
                mount: base.join("unified"),
                root: "/".into(),
                v1_controllers: None,
            },
        ]
    }

    #[test]
    fn freezing_uses_the_v1_freezer_first_and_waits_for_the_state() {
        let base = tempfile::tempdir().unwrap();
        let freezer = base.path().join("freezer/c");
        let unified = base.path().join("unified/c");
        for d in [&freezer, &unified] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(freezer.join("freezer.state"), "THAWED\n").unwrap();
        std::fs::write(unified.join("cgroup.freeze"), "0\n").unwrap();
        let hierarchies = v1_and_v2(base.path(), "freezer");
        let dirs = [freezer.clone(), unified.clone()];
        // A plain file reads back what was written: the kernel's "done".
        set_frozen(&hierarchies, &dirs, true, Duration::from_millis(50)).unwrap();
        assert_eq!(read(freezer.join("freezer.state")), "FROZEN");
        assert_eq!(read(unified.join("cgroup.freeze")), "0\n");
        // v2 only: cgroup.freeze, then cgroup.events must say so.
        std::fs::write(unified.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let late = set_frozen(
            &hierarchies[1..],
            &dirs[1..],
            true,
            Duration::from_millis(20),
        )
        .unwrap_err();
        assert_eq!(late.kind(), io::ErrorKind::TimedOut);
        assert_eq!(read(unified.join("cgroup.freeze")), "1");
        std::fs::write(unified.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        set_frozen(
            &hierarchies[1..],
            &dirs[1..],
            true,
            Duration::from_millis(20),
        )
        .unwrap();
        let none = set_frozen(&[], &[], true, Duration::ZERO).unwrap_err();
        assert_eq!(none.kind(), io::ErrorKind::Unsupported);
    }
}
