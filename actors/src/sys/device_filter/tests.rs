use std::fs::File;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use super::asm::*;
use super::bpf::{attached, load, ours, ProgInfo, ProgLoadAttr};
use super::reduce::{reduce, Exception, Reduced};
use super::*;

fn rule(
    allow: bool,
    kind: char,
    major: Option<u64>,
    minor: Option<u64>,
    access: &str,
) -> DeviceRule {
    DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.into(),
    }
}

fn deny_all() -> DeviceRule {
    rule(false, 'a', None, None, "rwm")
}

fn allow_all() -> DeviceRule {
    rule(true, 'a', None, None, "rwm")
}

/// runc's default allow list, as `spec::device_rules` appends it.
fn runc_defaults() -> Vec<DeviceRule> {
    crate::container::spec::runc_default_device_rules()
}

/// A request: `c`/`b`, major, minor, access letters.
type Request = (char, u32, u32, &'static str);

fn ctx_of((kind, major, minor, access): Request) -> [u32; 3] {
    let kind = if kind == 'b' { DEV_BLOCK } else { DEV_CHAR };
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => ACC_MKNOD,
        };
    }
    [kind | bits << 16, major, minor]
}

/// Runs a program on a request, for exactly the instructions `compile`
/// emits, checking what the kernel's verifier would refuse: reads of
/// unset registers, jumps out of the program or backwards, an exit
/// without r0 or with a value other than 0 or 1.
fn run(prog: &[Insn], ctx: [u32; 3]) -> bool {
    let mut regs: [Option<u64>; 11] = [None; 11];
    regs[1] = Some(0); // the context's address
    let get = |regs: &[Option<u64>; 11], r: u8| -> u64 {
        regs[r as usize].unwrap_or_else(|| panic!("r{r} read before it was set"))
    };
    let mut pc = 0usize;
    for _ in 0..=prog.len() {
        let insn = prog.get(pc).unwrap_or_else(|| panic!("fell off at {pc}"));
        let (dst, src, imm) = (insn.dst(), insn.src(), insn.imm());
        let jump = |taken: bool| -> usize {
            assert!(insn.off() >= 0, "backward jump at {pc}");
            if taken {
                pc + 1 + insn.off() as usize
            } else {
                pc + 1
            }
        };
        let low = |regs: &[Option<u64>; 11], r: u8| get(regs, r) as u32;
        pc = match insn.code() {
            LDX_MEM_W => {
                assert_eq!(src, 1, "loads only from the context");
                assert_eq!(get(&regs, src), 0, "r1 is no longer the context");
                let field = match insn.off() {
                    CTX_ACCESS_TYPE => ctx[0],
                    CTX_MAJOR => ctx[1],
                    CTX_MINOR => ctx[2],
                    off => panic!("load at context offset {off}"),
                };
                regs[dst as usize] = Some(u64::from(field));
                pc + 1
            }
            ALU32_MOV_X => {
                regs[dst as usize] = Some(u64::from(low(&regs, src)));
                pc + 1
            }
            ALU32_AND_K => {
                regs[dst as usize] = Some(u64::from(low(&regs, dst) & imm as u32));
                pc + 1
            }
            ALU32_RSH_K => {
                regs[dst as usize] = Some(u64::from(low(&regs, dst) >> imm as u32));
                pc + 1
            }
            ALU64_MOV_K => {
                regs[dst as usize] = Some(imm as i64 as u64);
                pc + 1
            }
            JMP32_JNE_K => jump(low(&regs, dst) != imm as u32),
            JMP32_JEQ_K => jump(low(&regs, dst) == imm as u32),
            JMP32_JSET_K => jump((low(&regs, dst) & imm as u32) != 0),
            EXIT => {
                let r0 = get(&regs, 0);
                assert!(r0 <= 1, "returns {r0}");
                return r0 == 1;
            }
            code => panic!("unexpected opcode {code:#x} at {pc}"),
        };
        assert!(pc <= prog.len(), "jump out of the program");
    }
    panic!("no exit: a loop?");
}

fn decide(rules: &[DeviceRule], request: Request) -> bool {
    run(&compile(rules).expect("compiles"), ctx_of(request))
}

/// The v1 kernel's check over a reduced list (`match_exception` and
/// `match_exception_partial`), to compare the compiled program with.
fn reference(reduced: &Reduced, [access_type, major, minor]: [u32; 3]) -> bool {
    let (kind, access) = (access_type & 0xffff, access_type >> 16);
    let hits = |e: &Exception| {
        e.kind == kind && e.major.is_none_or(|m| m == major) && e.minor.is_none_or(|m| m == minor)
    };
    if reduced.default_allow {
        !reduced
            .exceptions
            .iter()
            .any(|e| hits(e) && access & e.access != 0)
    } else {
        reduced
            .exceptions
            .iter()
            .any(|e| hits(e) && access & !e.access == 0)
    }
}

#[test]
fn runc_defaults_under_a_deny_all_allow_exactly_their_devices() {
    let mut rules = vec![deny_all()];
    rules.extend(runc_defaults());
    let cases: &[(Request, bool)] = &[
        (('c', 1, 3, "rw"), true),      // null
        (('c', 1, 5, "r"), true),       // zero
        (('c', 1, 7, "w"), true),       // full
        (('c', 1, 8, "rw"), true),      // random
        (('c', 1, 9, "r"), true),       // urandom
        (('c', 5, 0, "rw"), true),      // tty
        (('c', 5, 1, "rw"), true),      // console
        (('c', 5, 2, "rw"), true),      // ptmx
        (('c', 136, 0, "rw"), true),    // pts/0
        (('c', 136, 4095, "rw"), true), // any pts
        (('c', 10, 200, "rw"), true),   // tun
        (('c', 10, 200, "rwm"), true),
        (('c', 1, 4, "r"), false),     // port
        (('c', 1, 11, "w"), false),    // kmsg
        (('c', 10, 229, "rw"), false), // fuse
        (('c', 10, 237, "rw"), false), // loop-control
        (('c', 4, 0, "rw"), false),    // tty0
        (('c', 5, 3, "rw"), false),
        (('b', 8, 0, "r"), false),  // sda
        (('b', 1, 3, "rw"), false), // a block device with null's numbers
        // mknod of anything is allowed ("c *:* m", "b *:* m"), but
        // nothing more than mknod on a device outside the list.
        (('c', 1, 4, "m"), true),
        (('b', 8, 0, "m"), true),
        (('b', 8, 0, "rm"), false),
        (('c', 99, 99, "m"), true),
    ];
    for &(request, want) in cases {
        assert_eq!(decide(&rules, request), want, "{request:?}");
    }
}

#[test]
fn with_no_rules_everything_is_denied() {
    assert!(!decide(&[], ('c', 1, 3, "r")));
    assert!(!decide(&[], ('b', 7, 0, "m")));
}

#[test]
fn a_type_a_rule_matches_everything_and_resets() {
    let everything = [
        ('c', 1, 3, "rwm"),
        ('b', 8, 1, "r"),
        ('c', 4095, 1048575, "w"),
    ];
    for request in everything {
        assert!(decide(&[allow_all()], request), "{request:?}");
        assert!(!decide(&[allow_all(), deny_all()], request), "{request:?}");
        // Whatever came before an `a` rule is gone.
        let before = [
            deny_all(),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            deny_all(),
        ];
        assert!(!decide(&before, request), "{request:?}");
        // Its numbers and access are ignored, as v1 ignores them.
        let partial = [rule(true, 'a', Some(1), Some(3), "r")];
        assert!(decide(&partial, request), "{request:?}");
    }
}

#[test]
fn later_rules_override_earlier_ones() {
    let allow_then_deny = [
        deny_all(),
        rule(true, 'c', Some(1), Some(3), "rwm"),
        rule(false, 'c', Some(1), Some(3), "w"),
    ];
    assert!(decide(&allow_then_deny, ('c', 1, 3, "r")));
    assert!(decide(&allow_then_deny, ('c', 1, 3, "m")));
    assert!(!decide(&allow_then_deny, ('c', 1, 3, "w")));
    assert!(!decide(&allow_then_deny, ('c', 1, 3, "rw")));
    let deny_then_allow = [
        allow_all(),
        rule(false, 'b', Some(8), None, "rwm"),
        rule(true, 'b', Some(8), None, "r"),
    ];
    assert!(decide(&deny_then_allow, ('b', 8, 1, "r")));
    assert!(!decide(&deny_then_allow, ('b', 8, 1, "w")));
    assert!(!decide(&deny_then_allow, ('b', 8, 1, "rw")));
    assert!(decide(&deny_then_allow, ('b', 9, 1, "rw")));
    assert!(decide(&deny_then_allow, ('c', 8, 1, "rw")));
    // Allowed again after being taken away.
    let back = [
        deny_all(),
        rule(true, 'c', Some(1), Some(5), "rw"),
        rule(false, 'c', Some(1), Some(5), "rw"),
        rule(true, 'c', Some(1), Some(5), "r"),
    ];
    assert!(decide(&back, ('c', 1, 5, "r")));
    assert!(!decide(&back, ('c', 1, 5, "w")));
}

#[test]
fn access_must_be_a_subset_of_an_allowing_rule() {
    let rules = [deny_all(), rule(true, 'c', Some(1), Some(5), "r")];
    assert!(decide(&rules, ('c', 1, 5, "r")));
    assert!(!decide(&rules, ('c', 1, 5, "w")));
    assert!(!decide(&rules, ('c', 1, 5, "rw")));
    assert!(!decide(&rules, ('c', 1, 5, "m")));
    // Two allows of the same device add up, as v1 merges them...
    let merged = [
        deny_all(),
        rule(true, 'c', Some(1), Some(5), "r"),
        rule(true, 'c', Some(1), Some(5), "w"),
    ];
    assert!(decide(&merged, ('c', 1, 5, "rw")));
    assert!(!decide(&merged, ('c', 1, 5, "rwm")));
    // ...but rules for different numbers do not: one rule must cover it.
    let apart = [
        deny_all(),
        rule(true, 'c', Some(1), None, "r"),
        rule(true, 'c', Some(1), Some(5), "w"),
    ];
    assert!(decide(&apart, ('c', 1, 5, "r")));
    assert!(decide(&apart, ('c', 1, 5, "w")));
    assert!(!decide(&apart, ('c', 1, 5, "rw")));
}

#[test]
fn wildcards_match_any_number_of_their_type() {
    let rules = [
        deny_all(),
        rule(true, 'c', Some(4), None, "rw"),
        rule(true, 'b', None, Some(0), "r"),
        rule(true, 'c', None, None, "m"),
    ];
    assert!(decide(&rules, ('c', 4, 0, "rw")));
    assert!(decide(&rules, ('c', 4, 64, "w")));
    assert!(!decide(&rules, ('c', 5, 0, "r")));
    assert!(decide(&rules, ('b', 8, 0, "r")));
    assert!(decide(&rules, ('b', 259, 0, "r")));
    assert!(!decide(&rules, ('b', 8, 1, "r")));
    assert!(!decide(&rules, ('b', 8, 0, "m")));
    assert!(decide(&rules, ('c', 200, 7, "m")));
    // u32::MAX is v1's own spelling of `*`.
    let max = [
        deny_all(),
        rule(true, 'c', Some(u64::from(u32::MAX)), Some(3), "r"),
    ];
    assert!(decide(&max, ('c', 7, 3, "r")));
    // Large numbers are compared as the unsigned 32-bit values they are.
    let big = [
        deny_all(),
        rule(true, 'c', Some(0x8000_0001), Some(0xffff_fffe), "r"),
    ];
    assert!(decide(&big, ('c', 0x8000_0001, 0xffff_fffe, "r")));
    assert!(!decide(&big, ('c', 1, 0xffff_fffe, "r")));
}

#[test]
fn denying_part_of_a_wildcard_leaves_it_whole_as_v1_does() {
    // v1 only shrinks the exception with the very same numbers: this
    // deny of 1:3 does not cut into "c 1:* rw".
    let rules = [
        deny_all(),
        rule(true, 'c', Some(1), None, "rw"),
        rule(false, 'c', Some(1), Some(3), "w"),
    ];
    assert!(decide(&rules, ('c', 1, 3, "w")));
    // Under allow-all, a deny matches with any of its bits.
    let denied = [allow_all(), rule(false, 'c', Some(1), None, "w")];
    assert!(!decide(&denied, ('c', 1, 3, "rw")));
    assert!(decide(&denied, ('c', 1, 3, "r")));
    assert!(decide(&denied, ('c', 1, 3, "m")));
}

#[test]
fn rules_v1_would_refuse_are_refused() {
    let cases = [
        (
            rule(true, 'x', None, None, "r"),
            "device rule 1 (\"x *:* r\"): type 'x' is not a, c or b",
        ),
        (
            rule(true, 'c', Some(1), Some(3), "rx"),
            "device rule 1 (\"c 1:3 rx\"): access 'x' is not r, w or m",
        ),
        (
            rule(true, 'c', Some(1 << 32), Some(3), "r"),
            "device rule 1 (\"c 4294967296:3 r\"): major 4294967296 is over 4294967295",
        ),
    ];
    for (bad, message) in cases {
        let err = compile(&[deny_all(), bad]).unwrap_err();
        assert!(err.is_bad_rule());
        assert_eq!(err.to_string(), message);
    }
}

/// The program agrees with the kernel's own check over the reduced list,
/// for many rule lists and requests (a fixed pseudo-random sample).
#[test]
fn the_program_decides_as_the_kernel_check_over_many_lists() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let accesses = ["r", "w", "m", "rw", "rm", "wm", "rwm"];
    let number = |v: u64| (v < 3).then_some(v);
    for _ in 0..300 {
        let len = next(8) as usize;
        let rules: Vec<DeviceRule> = (0..len)
            .map(|_| {
                let kind = ['a', 'c', 'c', 'b', 'b'][next(5) as usize];
                rule(
                    next(2) == 0,
                    kind,
                    number(next(4)),
                    number(next(4)),
                    accesses[next(7) as usize],
                )
            })
            .collect();
        let reduced = reduce(&rules).expect("valid rules");
        let prog = compile(&rules).expect("compiles");
        for kind in ['c', 'b'] {
            for major in 0..3 {
                for minor in 0..3 {
                    for access in accesses {
                        let ctx = ctx_of((kind, major, minor, access));
                        assert_eq!(
                            run(&prog, ctx),
                            reference(&reduced, ctx),
                            "{rules:?} on {kind} {major}:{minor} {access}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn instructions_are_eight_bytes_with_registers_in_one() {
    assert_eq!(size_of::<Insn>(), 8);
    let insn = Insn::new(ALU32_MOV_X, 3, 2, -1, 7);
    assert_eq!(
        (insn.dst(), insn.src(), insn.off(), insn.imm()),
        (3, 2, -1, 7)
    );
    if cfg!(target_endian = "little") {
        assert_eq!(insn.regs, 0x23);
    }
    assert_eq!(size_of::<ProgLoadAttr>(), 72);
    assert_eq!(size_of::<ProgInfo>(), 80);
}

// With root: the v1 kernel and the kernel's BPF hook.

/// The devices lists the v1 kernel keeps agree with the reduction, for
/// lists that end under deny-all (the kernel shows no exceptions
/// under allow-all).
#[test]
fn reduction_agrees_with_the_v1_devices_cgroup() {
    let hierarchies = crate::sys::cgroup::hierarchies().unwrap_or_default();
    let Some(v1) = hierarchies.iter().find(|h| h.has_v1("devices")) else {
        eprintln!("skipped: no cgroup v1 devices controller on this host");
        return;
    };
    let dir = v1
        .mount
        .join(format!("sandvisor-devfilter-v1-{}", std::process::id()));
    std::fs::create_dir(&dir).expect("make a v1 devices cgroup");
    let lists = [
        {
            let mut l = vec![deny_all()];
            l.extend(runc_defaults());
            l
        },
        vec![
            deny_all(),
            rule(true, 'c', Some(1), Some(5), "r"),
            rule(true, 'c', Some(1), None, "rw"),
            rule(true, 'c', Some(1), Some(5), "w"),
            rule(false, 'c', Some(1), Some(5), "r"),
            rule(false, 'c', Some(1), Some(3), "rw"),
            rule(true, 'b', None, Some(0), "m"),
            rule(false, 'c', Some(1), None, "rw"),
        ],
        vec![
            allow_all(),
            rule(false, 'c', Some(1), Some(3), "rw"),
            deny_all(),
            rule(true, 'b', Some(8), Some(0), "rwm"),
            rule(false, 'b', Some(8), Some(0), "rwm"),
            rule(true, 'c', Some(136), None, "w"),
        ],
    ];
    let shown = |e: &Exception| {
        let n = |v: Option<u32>| v.map_or("*".to_owned(), |v| v.to_string());
        let access: String = [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')]
            .iter()
            .filter(|(bit, _)| e.access & bit != 0)
            .map(|&(_, c)| c)
            .collect();
        let kind = if e.kind == DEV_CHAR { 'c' } else { 'b' };
        format!("{kind} {}:{} {access}", n(e.major), n(e.minor))
    };
    let mut failures = Vec::new();
    for rules in &lists {
        let written = crate::sys::cgroup::write_device_rules(&dir, rules);
        let listed = std::fs::read_to_string(dir.join("devices.list"));
        let reduced = reduce(rules).expect("valid rules");
        assert!(!reduced.default_allow);
        let want: Vec<String> = reduced.exceptions.iter().map(shown).collect();
        match (written, listed) {
            (Ok(()), Ok(text)) => {
                let got: Vec<&str> = text.lines().collect();
                if got != want {
                    failures.push(format!("{rules:?}: kernel {got:?}, ours {want:?}"));
                }
            }
            (w, l) => failures.push(format!("{rules:?}: {w:?} {l:?}")),
        }
    }
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(failures, Vec::<String>::new());
}

/// A temporary cgroup v2 directory, removed on drop.
struct TempCgroup(std::path::PathBuf);

impl Drop for TempCgroup {
    fn drop(&mut self) {
        for _ in 0..500 {
            match std::fs::remove_dir(&self.0) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                _ => return,
            }
        }
    }
}

/// Runs `script` with sh in `cgroup` (the child moves itself there
/// before exec); its stdout.
fn sh_in(cgroup: &Path, script: &str) -> String {
    use std::os::unix::process::CommandExt;
    let procs = std::fs::OpenOptions::new()
        .write(true)
        .open(cgroup.join("cgroup.procs"))
        .expect("open cgroup.procs");
    let fd = procs.as_raw_fd();
    let mut command = std::process::Command::new("/bin/sh");
    command.args(["-c", script]);
    // SAFETY: the closure only calls write(2) on a descriptor opened
    // before the fork ("0" is the writing process), which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    let output = command.output().expect("run sh in the cgroup");
    drop(procs);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn the_kernel_enforces_an_attached_program_and_a_replacement() {
    let hierarchies = crate::sys::cgroup::hierarchies().unwrap_or_default();
    let Some(v2) = hierarchies.iter().find(|h| h.v1_controllers.is_none()) else {
        eprintln!("skipped: no cgroup2 hierarchy is mounted on this host");
        return;
    };
    let cgroup = TempCgroup(
        v2.mount
            .join(format!("sandvisor-devfilter-{}", std::process::id())),
    );
    std::fs::create_dir(&cgroup.0).expect("make a cgroup v2 directory");
    let script = "echo x > /dev/null && echo null-writable; \
                  head -c1 /dev/zero 2>&1 >/dev/null; \
                  (echo x > /dev/zero) 2>/dev/null && echo zero-writable || echo zero-not-writable";
    let null_only = [deny_all(), rule(true, 'c', Some(1), Some(3), "rwm")];
    attach(&cgroup.0, &null_only).expect("attach");
    assert_eq!(
        sh_in(&cgroup.0, script),
        "null-writable\n\
         head: cannot open '/dev/zero' for reading: Operation not permitted\n\
         zero-not-writable\n"
    );
    // Attached again: the first program goes, or it would still deny
    // writing to /dev/zero.
    let and_zero_writes = [
        deny_all(),
        rule(true, 'c', Some(1), Some(3), "rwm"),
        rule(true, 'c', Some(1), Some(5), "w"),
    ];
    attach(&cgroup.0, &and_zero_writes).expect("attach again");
    assert_eq!(
        sh_in(&cgroup.0, script),
        "null-writable\n\
         head: cannot open '/dev/zero' for reading: Operation not permitted\n\
         zero-writable\n"
    );
    let dir = File::open(&cgroup.0).expect("open the cgroup");
    assert_eq!(ours(&dir).expect("query").len(), 1);
    assert_eq!(attached(&dir).expect("query").len(), 1);
}

#[test]
fn a_refused_program_comes_with_the_verifier_log() {
    // A read past the end of the context: the verifier refuses it.
    let bad = [
        Insn::new(LDX_MEM_W, R_TYPE, R1, 12, 0),
        Insn::new(ALU64_MOV_K, R0, 0, 0, 0),
        Insn::new(EXIT, 0, 0, 0, 0),
    ];
    let Err((error, log)) = load(&bad) else {
        panic!("the verifier took a read past the context");
    };
    if error.raw_os_error() == Some(libc::EPERM) {
        eprintln!("skipped: loading BPF programs needs root");
        return;
    }
    assert_eq!(error.raw_os_error(), Some(libc::EACCES), "{error} {log}");
    assert!(log.contains("invalid bpf_context access"), "{log}");
}

#[test]
fn attach_names_the_cgroup_it_could_not_use() {
    let err = attach(Path::new("/nonexistent/cgroup"), &[deny_all()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "open cgroup /nonexistent/cgroup: No such file or directory (os error 2)"
    );
}
