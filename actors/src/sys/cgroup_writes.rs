//! Applying planned control writes to a container's cgroup: each goes to
//! the hierarchy that has its controller (v1 first, else v2, where the
//! controller is switched on in the ancestors), to the file this kernel
//! has for the setting, and a failure puts back what was changed.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::cgroup::{controller_dir, enable_v2_controller, write_control, Hierarchy};

/// One control file write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlWrite {
    /// The controller the file belongs to (v1: the hierarchy that has it;
    /// v2: the one to enable in the parents' `cgroup.subtree_control`).
    pub controller: String,
    /// The file, in the container's cgroup directory.
    pub file: String,
    /// What is written.
    pub value: String,
    /// The kernel may refuse this write until the next one is made (v1's
    /// memory limit must stay below memory+swap): on refusal, the two are
    /// tried in the other order.
    pub swap_with_next: bool,
    /// Where kernels name the setting differently (the block I/O weight
    /// under the BFQ scheduler), each other file with the value it takes:
    /// when the cgroup lacks `file`, the first of these it has is written.
    pub or_else: Vec<(String, String)>,
}

/// Why limits were not applied.
#[derive(Debug, Error)]
pub enum LimitError {
    /// No hierarchy of the host has the controller a limit needs (runc
    /// refuses such a limit too); nothing was written.
    #[error("cannot set {controller} limits: {reason}")]
    NoController {
        /// The missing controller.
        controller: String,
        /// Where it was looked for.
        reason: String,
    },
    /// The cgroup has none of the files the setting may be written to (a
    /// page size the host does not have, an I/O scheduler without weights).
    #[error("cannot write {value:?}: cgroup {} has no {} file", dir.display(), files.join(" or "))]
    NoFile {
        /// The cgroup directory.
        dir: PathBuf,
        /// The files looked for, in order of preference.
        files: Vec<String>,
        /// What was to be written.
        value: String,
    },
    /// The kernel refused a write; the message names the file, the value
    /// and the errno.
    #[error(transparent)]
    Kernel(#[from] io::Error),
}

/// Applies `writes` to the cgroup at `relative` whose directories (one per
/// hierarchy, in `hierarchies`' order) are `dirs`: each in the v1
/// hierarchy with its controller, else in v2, whose controller is enabled
/// in the parents first. A controller no hierarchy has is refused before
/// anything is written. On a failure, the values already changed are put
/// back and the error names the file and the value.
pub fn apply_writes(
    hierarchies: &[Hierarchy],
    dirs: &[PathBuf],
    relative: &Path,
    writes: &[ControlWrite],
) -> Result<(), LimitError> {
    let mut controllers: Vec<&str> = writes.iter().map(|w| w.controller.as_str()).collect();
    controllers.sort_unstable();
    controllers.dedup();
    for controller in controllers {
        check_controller(hierarchies, controller)?;
    }
    let v2_mount = hierarchies
        .iter()
        .find(|h| h.v1_controllers.is_none())
        .map(|h| h.mount.clone())
        .unwrap_or_default();
    let mut done: Vec<(PathBuf, String, String)> = Vec::new();
    let mut enabled: Vec<String> = Vec::new();
    let mut apply = |w: &ControlWrite| -> Result<(), LimitError> {
        let (dir, v2) = controller_dir(hierarchies, dirs, &w.controller).ok_or_else(|| {
            LimitError::NoController {
                controller: w.controller.clone(),
                reason: "no cgroup hierarchy of this host has it".into(),
            }
        })?;
        // Once per controller: it walks and reads every ancestor.
        if v2 && !enabled.contains(&w.controller) {
            enable_v2_controller(&v2_mount, relative, &w.controller)?;
            enabled.push(w.controller.clone());
        }
        let (file, value) = target(dir, w)?;
        let before = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        write_control(dir, file, value).map_err(|e| {
            // cgroupfs answers a write to a file it lacks with EACCES.
            if dir.join(file).exists() {
                LimitError::Kernel(e)
            } else {
                LimitError::NoFile {
                    dir: dir.clone(),
                    files: vec![file.to_owned()],
                    value: value.to_owned(),
                }
            }
        })?;
        // Only a one-line value can be written back as it reads.
        if before.trim().lines().count() == 1 {
            done.push((dir.clone(), file.to_owned(), before.trim().to_owned()));
        }
        Ok(())
    };
    let mut result = Ok(());
    let mut i = 0;
    while i < writes.len() {
        let write = &writes[i];
        let applied = match apply(write) {
            // The kernel's order constraint: the other way round.
            Err(e) if write.swap_with_next && i + 1 < writes.len() => apply(&writes[i + 1])
                .map_err(|_| e)
                .and_then(|()| apply(write))
                .map(|()| 2),
            other => other.map(|()| 1),
        };
        match applied {
            Ok(n) => i += n,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_err() {
        for (dir, file, value) in done.iter().rev() {
            let _ = std::fs::write(dir.join(file), value);
        }
    }
    result
}

/// Refuses `controller` when no v1 hierarchy has it and the v2 hierarchy
/// (if any) does not offer it.
fn check_controller(hierarchies: &[Hierarchy], controller: &str) -> Result<(), LimitError> {
    if hierarchies.iter().any(|h| h.has_v1(controller)) {
        return Ok(());
    }
    let Some(v2) = hierarchies.iter().find(|h| h.v1_controllers.is_none()) else {
        return Err(LimitError::NoController {
            controller: controller.to_owned(),
            reason: "no cgroup hierarchy of this host has it".into(),
        });
    };
    let file = v2.mount.join("cgroup.controllers");
    let offered = std::fs::read_to_string(&file)
        .map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", file.display())))?;
    if offered.split_whitespace().any(|c| c == controller) {
        Ok(())
    } else {
        Err(LimitError::NoController {
            controller: controller.to_owned(),
            reason: format!(
                "no v1 hierarchy has it and the v2 hierarchy at {} does not offer it",
                v2.mount.display()
            ),
        })
    }
}

/// The file `write` goes to in `dir`, and its value there: its own file,
/// or where the cgroup lacks it, the first alternative the cgroup has.
fn target<'w>(dir: &Path, write: &'w ControlWrite) -> Result<(&'w str, &'w str), LimitError> {
    if write.or_else.is_empty() {
        return Ok((&write.file, &write.value));
    }
    let choices = std::iter::once((write.file.as_str(), write.value.as_str())).chain(
        write
            .or_else
            .iter()
            .map(|(file, value)| (file.as_str(), value.as_str())),
    );
    choices
        .clone()
        .find(|(file, _)| dir.join(file).exists())
        .ok_or_else(|| LimitError::NoFile {
            dir: dir.to_owned(),
            files: choices.map(|(file, _)| file.to_owned()).collect(),
            value: write.value.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn w(controller: &str, file: &str, value: &str) -> ControlWrite {
        ControlWrite {
            controller: controller.into(),
            file: file.into(),
            value: value.into(),
            ..ControlWrite::default()
        }
    }

    #[test]
    fn writes_go_to_their_controller_and_a_failure_puts_back_what_was_changed() {
        let base = tempfile::tempdir().unwrap();
        let pids = base.path().join("pids/c");
        let unified = base.path().join("unified/c");
        std::fs::create_dir_all(&pids).unwrap();
        std::fs::create_dir_all(&unified).unwrap();
        std::fs::write(pids.join("pids.max"), "max\n").unwrap();
        for dir in [base.path().join("unified"), unified.clone()] {
            std::fs::write(dir.join("cgroup.controllers"), "memory\n").unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        std::fs::write(unified.join("memory.max"), "max\n").unwrap();
        let hierarchies = v1_and_v2(base.path(), "pids");
        let dirs = [pids.clone(), unified.clone()];
        apply_writes(
            &hierarchies,
            &dirs,
            Path::new("c"),
            &[
                w("pids", "pids.max", "64"),
                w("memory", "memory.max", "1000"),
            ],
        )
        .unwrap();
        assert_eq!(read(pids.join("pids.max")), "64");
        assert_eq!(read(unified.join("memory.max")), "1000");
        // v2's memory controller was switched on for the child.
        assert_eq!(
            read(base.path().join("unified/cgroup.subtree_control")),
            "+memory"
        );
        // The third write fails (no such directory): the first two go back.
        let failed = apply_writes(
            &hierarchies,
            &dirs,
            Path::new("c"),
            &[
                w("pids", "pids.max", "8"),
                w("memory", "memory.max", "2000"),
                w("memory", "nested/memory.high", "1"),
            ],
        )
        .unwrap_err();
        assert!(
            failed.to_string().contains("nested/memory.high"),
            "{failed}"
        );
        assert_eq!(read(pids.join("pids.max")), "64");
        assert_eq!(read(unified.join("memory.max")), "1000");
        let none = apply_writes(
            &hierarchies[..1],
            &dirs[..1],
            Path::new("c"),
            &[w("cpu", "cpu.weight", "1")],
        );
        assert!(
            matches!(none, Err(LimitError::NoController { ref controller, .. }) if controller == "cpu"),
            "{none:?}"
        );
    }

    #[test]
    fn a_setting_goes_to_the_first_of_its_files_the_cgroup_has() {
        let base = tempfile::tempdir().unwrap();
        let blkio = base.path().join("blkio/c");
        std::fs::create_dir_all(&blkio).unwrap();
        let hierarchies = v1_and_v2(base.path(), "blkio");
        let dirs = [blkio.clone(), base.path().join("unified/c")];
        let weight = ControlWrite {
            or_else: vec![("blkio.bfq.weight".into(), "500".into())],
            ..w("blkio", "blkio.weight", "500")
        };
        let apply =
            |writes: &[ControlWrite]| apply_writes(&hierarchies, &dirs, Path::new("c"), writes);
        // CFQ's file first, when the kernel has it.
        std::fs::write(blkio.join("blkio.weight"), "100\n").unwrap();
        std::fs::write(blkio.join("blkio.bfq.weight"), "100\n").unwrap();
        apply(std::slice::from_ref(&weight)).unwrap();
        assert_eq!(read(blkio.join("blkio.weight")), "500");
        assert_eq!(read(blkio.join("blkio.bfq.weight")), "100\n");
        // BFQ's where CFQ's is absent.
        std::fs::remove_file(blkio.join("blkio.weight")).unwrap();
        apply(std::slice::from_ref(&weight)).unwrap();
        assert_eq!(read(blkio.join("blkio.bfq.weight")), "500");
        assert!(!blkio.join("blkio.weight").exists());
        // Neither: refused naming both, and what was written goes back.
        std::fs::remove_file(blkio.join("blkio.bfq.weight")).unwrap();
        std::fs::write(blkio.join("blkio.leaf_weight"), "100\n").unwrap();
        let failed = apply(&[w("blkio", "blkio.leaf_weight", "300"), weight.clone()]).unwrap_err();
        assert_eq!(
            failed.to_string(),
            format!(
                "cannot write \"500\": cgroup {} has no blkio.weight or blkio.bfq.weight file",
                blkio.display()
            )
        );
        assert!(matches!(failed, LimitError::NoFile { .. }));
        assert_eq!(read(blkio.join("blkio.leaf_weight")), "100");
        assert!(!blkio.join("blkio.weight").exists() && !blkio.join("blkio.bfq.weight").exists());
    }

    #[test]
    fn a_controller_no_hierarchy_has_is_refused_before_anything_is_written() {
        let base = tempfile::tempdir().unwrap();
        let pids = base.path().join("pids/c");
        let unified = base.path().join("unified/c");
        std::fs::create_dir_all(&pids).unwrap();
        std::fs::create_dir_all(&unified).unwrap();
        std::fs::write(pids.join("pids.max"), "max\n").unwrap();
        std::fs::write(base.path().join("unified/cgroup.controllers"), "memory\n").unwrap();
        let hierarchies = v1_and_v2(base.path(), "pids");
        let dirs = [pids.clone(), unified.clone()];
        let writes = [
            w("pids", "pids.max", "64"),
            w("hugetlb", "hugetlb.2MB.max", "4194304"),
        ];
        let refused = apply_writes(&hierarchies, &dirs, Path::new("c"), &writes).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "cannot set hugetlb limits: no v1 hierarchy has it and the v2 hierarchy at {} does not offer it",
                base.path().join("unified").display()
            )
        );
        assert_eq!(read(pids.join("pids.max")), "max\n");
        assert!(!unified.join("hugetlb.2MB.max").exists());
        // A v1-only host.
        let refused =
            apply_writes(&hierarchies[..1], &dirs[..1], Path::new("c"), &writes).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "cannot set hugetlb limits: no cgroup hierarchy of this host has it"
        );
        // Offered by v2 (a hybrid host's hugetlb): written there.
        std::fs::write(base.path().join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        std::fs::write(base.path().join("unified/cgroup.subtree_control"), "").unwrap();
        apply_writes(&hierarchies, &dirs, Path::new("c"), &writes).unwrap();
        assert_eq!(read(unified.join("hugetlb.2MB.max")), "4194304");
        assert_eq!(read(pids.join("pids.max")), "64");
    }
}
