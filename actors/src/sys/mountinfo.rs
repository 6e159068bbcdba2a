//! `/proc/self/mountinfo`, as far as container setup needs it: which
//! mount holds a path, and whether that mount is shared.

use std::path::Path;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (unescaped).
    pub mount_point: String,
    /// It has a `shared:N` peer group: mounts under it propagate to its
    /// peers, and `pivot_root` refuses a new root whose parent it is.
    pub shared: bool,
}

/// Parses one line: `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS
/// [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, _) = line.split_once(" - ")?;
    let mut fields = left.split(' ');
    let mount_point = fields.nth(4)?;
    // What follows the mount options are the optional fields.
    let shared = fields.skip(1).any(|f| f.starts_with("shared:"));
    Some(MountEntry {
        mount_point: unescape(mount_point),
        shared,
    })
}

/// Undoes the kernel's octal escapes of space, tab, newline and backslash.
pub fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The mount that holds `path` (absolute, without symlinks): the one with
/// the longest mount point that is `path` or one of its ancestors; of
/// mounts stacked on the same point, the last listed (the one on top).
pub fn mount_holding(mountinfo: &str, path: &Path) -> Option<MountEntry> {
    let mut best: Option<MountEntry> = None;
    for entry in mountinfo.lines().filter_map(parse_line) {
        if !path.starts_with(&entry.mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or(|b| entry.mount_point.len() >= b.mount_point.len());
        if longer {
            best = Some(entry);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
22 27 0:21 / /proc rw,relatime - proc proc rw
40 27 0:30 / /var/lib rw,relatime master:3 - tmpfs tmpfs rw
41 40 0:31 / /var/lib/containers rw,relatime shared:7 master:3 - ext4 /dev/sdb rw
42 27 0:32 / /var/lib\\040x rw - tmpfs tmpfs rw
43 41 0:33 / /var/lib/containers rw - tmpfs tmpfs rw
";

    fn holding(path: &str) -> Option<MountEntry> {
        mount_holding(TABLE, Path::new(path))
    }

    #[test]
    fn the_longest_ancestor_mount_holds_a_path() {
        assert_eq!(
            holding("/srv/bundle/rootfs"),
            Some(MountEntry {
                mount_point: "/".into(),
                shared: true
            })
        );
        assert_eq!(
            holding("/var/lib/other").map(|m| m.mount_point),
            Some("/var/lib".into())
        );
        assert_eq!(holding("/var/lib/other").map(|m| m.shared), Some(false));
    }

    #[test]
    fn ancestors_are_whole_components_and_escapes_are_undone() {
        // "/var/libx" is not under "/var/lib".
        assert_eq!(
            holding("/var/libx/y").map(|m| m.mount_point),
            Some("/".into())
        );
        assert_eq!(
            holding("/var/lib x/y").map(|m| m.mount_point),
            Some("/var/lib x".into())
        );
    }

    #[test]
    fn of_stacked_mounts_the_one_on_top_holds_the_path() {
        // 41 is shared, 43 on top of it is not.
        assert_eq!(
            holding("/var/lib/containers/rootfs"),
            Some(MountEntry {
                mount_point: "/var/lib/containers".into(),
                shared: false
            })
        );
    }

    #[test]
    fn a_mount_point_itself_is_held_by_its_own_mount() {
        assert_eq!(
            holding("/proc").map(|m| m.mount_point),
            Some("/proc".into())
        );
        assert_eq!(holding("/var/lib").map(|m| m.shared), Some(false));
    }
}
