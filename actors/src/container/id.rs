//! The container id rule, as runc's: written once, for the supervisor, the
//! `boot` command and the state directory.

/// Checks a container (or sandbox) id as runc does: 1 to 1024 letters,
/// digits, '_', '+', '-' or '.', not only dots. The rule keeps an id inside
/// a directory (no '/', not "." or "..").
pub fn valid_container_id(id: &str) -> bool {
    (1..=1024).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
        && id.chars().any(|c| c != '.')
}

#[cfg(test)]
mod tests {
    use super::valid_container_id;

    #[test]
    fn ids_are_checked_as_runc_checks_them() {
        for ok in [
            "a",
            "a.b",
            "sandbox-1",
            "x_y.z+w",
            "A_b+c-1",
            "..a",
            &"a".repeat(1024),
        ] {
            assert!(valid_container_id(ok), "{ok:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/",
            "a b",
            "x\0",
            "é",
            &"a".repeat(1025),
        ] {
            assert!(!valid_container_id(bad), "{bad:?}");
        }
    }
}
