//! What a profile may use on this host, for `sandvisor features`.

use oci_spec::runtime::LinuxSeccomp;

use super::compile;

/// What a profile may use on this host: each candidate action, operator,
/// architecture and flag is kept only if a profile using it compiles here
/// (with this libseccomp and this kernel), so `sandvisor features` cannot
/// claim what a start would refuse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Support {
    /// `SCMP_ACT_*` names.
    pub actions: Vec<String>,
    /// `SCMP_CMP_*` names.
    pub operators: Vec<String>,
    /// `SCMP_ARCH_*` names.
    pub archs: Vec<String>,
    /// `SECCOMP_FILTER_FLAG_*` names.
    pub flags: Vec<String>,
}

/// The filter flags the runtime spec names (some may not be supported).
pub const FLAG_NAMES: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// Probes [`Support`] by compiling one small profile per candidate.
pub fn support() -> Support {
    let compiles = |json: String| {
        serde_json::from_str::<LinuxSeccomp>(&json).is_ok_and(|profile| compile(&profile).is_ok())
    };
    let keep = |names: &[&str], profile: &dyn Fn(&str) -> String| -> Vec<String> {
        names
            .iter()
            .filter(|name| compiles(profile(name)))
            .map(|name| (*name).to_owned())
            .collect()
    };
    Support {
        actions: keep(
            &[
                "SCMP_ACT_KILL",
                "SCMP_ACT_KILL_PROCESS",
                "SCMP_ACT_KILL_THREAD",
                "SCMP_ACT_TRAP",
                "SCMP_ACT_ERRNO",
                "SCMP_ACT_TRACE",
                "SCMP_ACT_ALLOW",
                "SCMP_ACT_LOG",
                "SCMP_ACT_NOTIFY",
            ],
            &|action| {
                format!(
                    r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getcwd"], "action": "{action}"}}]}}"#
                )
            },
        ),
        operators: keep(
            &[
                "SCMP_CMP_NE",
                "SCMP_CMP_LT",
                "SCMP_CMP_LE",
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_MASKED_EQ",
            ],
            &|op| {
                format!(
                    r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": [{{"index": 0, "value": 1, "valueTwo": 1, "op": "{op}"}}]}}]}}"#
                )
            },
        ),
        archs: keep(
            &[
                "SCMP_ARCH_X86",
                "SCMP_ARCH_X86_64",
                "SCMP_ARCH_X32",
                "SCMP_ARCH_ARM",
                "SCMP_ARCH_AARCH64",
                "SCMP_ARCH_MIPS",
                "SCMP_ARCH_MIPS64",
                "SCMP_ARCH_MIPS64N32",
                "SCMP_ARCH_MIPSEL",
                "SCMP_ARCH_MIPSEL64",
                "SCMP_ARCH_MIPSEL64N32",
                "SCMP_ARCH_PPC",
                "SCMP_ARCH_PPC64",
                "SCMP_ARCH_PPC64LE",
                "SCMP_ARCH_S390",
                "SCMP_ARCH_S390X",
                "SCMP_ARCH_PARISC",
                "SCMP_ARCH_PARISC64",
                "SCMP_ARCH_RISCV64",
                "SCMP_ARCH_LOONGARCH64",
                "SCMP_ARCH_M68K",
                "SCMP_ARCH_SH",
                "SCMP_ARCH_SHEB",
            ],
            &|arch| {
                format!(
                    r#"{{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["{arch}"], "syscalls": [{{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}}]}}"#
                )
            },
        ),
        flags: keep(FLAG_NAMES, &|flag| {
            format!(r#"{{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["{flag}"]}}"#)
        }),
    }
}
