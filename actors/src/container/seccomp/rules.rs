//! One entry of `linux.seccomp.syscalls`, validated and added to a filter.

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::LinuxSyscall;

use super::translate::{condition, scmp_action};
use super::{libseccomp_version, ProfileError, MAX_ARGS};

/// One validated entry of `linux.seccomp.syscalls`.
pub(super) struct Rule<'a> {
    /// Its index in `linux.seccomp.syscalls`.
    index: usize,
    names: &'a [String],
    action: ScmpAction,
    conditions: Vec<ScmpArgCompare>,
    /// Two conditions test the same argument: each condition becomes a
    /// rule of its own.
    split: bool,
}

impl<'a> Rule<'a> {
    pub(super) fn parse(index: usize, syscall: &'a LinuxSyscall) -> Result<Self, ProfileError> {
        let field = |rest: &str| format!("linux.seccomp.syscalls[{index}].{rest}");
        let action = scmp_action(
            syscall.action(),
            syscall.errno_ret(),
            &field("action"),
            &field("errnoRet"),
        )?;
        for (j, name) in syscall.names().iter().enumerate() {
            if name.is_empty() {
                return Err(ProfileError::Invalid {
                    field: field(&format!("names[{j}]")),
                    value: "\"\"".to_owned(),
                    reason: "a system call name cannot be empty",
                });
            }
        }
        let args = syscall.args().as_deref().unwrap_or_default();
        let mut per_arg = [0usize; MAX_ARGS];
        let mut conditions = Vec::with_capacity(args.len());
        for (j, arg) in args.iter().enumerate() {
            let Some(count) = per_arg.get_mut(arg.index()) else {
                return Err(ProfileError::Invalid {
                    field: field(&format!("args[{j}].index")),
                    value: arg.index().to_string(),
                    reason: "system calls have arguments 0 to 5",
                });
            };
            *count += 1;
            conditions.push(condition(arg));
        }
        Ok(Rule {
            index,
            names: syscall.names(),
            action,
            conditions,
            split: per_arg.iter().any(|&n| n > 1),
        })
    }

    /// Adds the rule for each of its names, and returns how many
    /// libseccomp rules that made.
    pub(super) fn add_to(
        &self,
        ctx: &mut ScmpFilterContext,
        default_action: ScmpAction,
        arches: &[(String, ScmpArch)],
        warnings: &mut Vec<String>,
    ) -> Result<usize, ProfileError> {
        if self.action == default_action {
            return Ok(0);
        }
        let mut added = 0;
        for (j, name) in self.names.iter().enumerate() {
            let field = format!("linux.seccomp.syscalls[{}].names[{j}]", self.index);
            // Resolves through libseccomp's table of every architecture:
            // failing means no architecture has the name.
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                warnings.push(format!(
                    "{field}: system call {name:?} is not known to libseccomp {}; rule skipped",
                    libseccomp_version()
                ));
                continue;
            };
            let exists = arches.iter().any(|(_, arch)| {
                ScmpSyscall::from_name_by_arch_rewrite(name, *arch)
                    .is_ok_and(|nr| nr.as_raw_syscall() >= 0)
            });
            if !exists {
                let names: Vec<&str> = arches.iter().map(|(n, _)| n.as_str()).collect();
                warnings.push(format!(
                    "{field}: system call {name:?} does not exist on the filter's \
                     architectures ({}); rule has no effect",
                    names.join(", ")
                ));
            }
            let groups: Vec<&[ScmpArgCompare]> = if self.split {
                self.conditions.chunks(1).collect()
            } else {
                vec![&self.conditions[..]]
            };
            for conditions in groups {
                ctx.add_rule_conditional(self.action, syscall, conditions)
                    .map_err(|source| ProfileError::Libseccomp {
                        op: format!("add the rule for system call {name:?} ({field})"),
                        source,
                    })?;
                added += 1;
            }
        }
        Ok(added)
    }
}
