//! Device cgroup rules on cgroup v2: the v2 hierarchy has no `devices`
//! controller, so the rules become a `BPF_PROG_TYPE_CGROUP_DEVICE` program
//! attached to the container's cgroup (as runc and youki do).
//!
//! The program must decide exactly as the v1 devices cgroup does with the
//! same rules written in order (`cgroup::write_device_rules`), so that a
//! spec means the same on every host. The rules are therefore first
//! reduced the way the v1 kernel reduces them (a default behaviour plus a
//! list of exceptions, `security/device_cgroup.c`), and that outcome is
//! compiled:
//! - a type `a` rule resets everything: the default becomes the rule's
//!   (allow or deny) and the exceptions are dropped;
//! - a rule that agrees with the default takes its access bits out of the
//!   exception with the very same type, major and minor (the kernel does
//!   not split wildcard exceptions, and neither do we);
//! - a rule that disagrees merges its bits into that exception, or adds one.
//!
//! A request (type, major, minor, access) under default deny is allowed when
//! one exception covers it with all its access bits; under default allow it
//! is denied when any exception matches it with any of its access bits. So
//! for the usual lists (deny everything, then allow some devices) the last
//! matching rule decides, a type `a` rule matches everything, and a
//! request's access must be a subset of an allowing rule's.
//!
//! Unlike a fresh v1 cgroup, which starts with its parent's allow-all, the
//! reduction starts from deny-all, as runc's does: every spec sandvisor
//! applies begins with a deny-all rule anyway (runc's, containerd's and the
//! built-in one), and a list that does not must not open every device.
//!
//! Attaching uses `BPF_F_ALLOW_MULTI`, so programs of parent cgroups still
//! apply. A program sandvisor attached to the same cgroup earlier is
//! detached only after the new one is in place, so the cgroup is never left
//! without a filter.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::cgroup::DeviceRule;

// bpf(2) commands, program and attach types (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// `struct bpf_cgroup_dev_ctx`: the device type in the low 16 bits of
// `access_type`, the access asked for in the high 16 bits.
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;

/// The name the kernel shows for the programs sandvisor attaches (15
/// bytes at most): how an earlier one is told from anyone else's.
const PROG_NAME: &[u8] = b"sandvisor_dev";
const LICENSE: &CStr = c"Apache-2.0";
/// Room for the verifier's explanation when a load fails.
const LOG_SIZE: usize = 64 * 1024;
/// How much of that explanation an error carries (its end says why).
const LOG_KEPT: usize = 4096;
/// A cgroup holds at most 64 programs per attach type.
const MAX_PROGS: usize = 64;

// Instruction classes and operations (include/uapi/linux/bpf_common.h, bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JMP32_JEQ_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
const JMP32_JNE_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const JMP32_JSET_K: u8 = 0x46; // BPF_JMP32 | BPF_JSET | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 holds the context on entry; the prologue loads the
// request into r2..r5, after which r1 is free as a scratch register.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// Why device rules could not be compiled or put in force.
#[derive(Debug, thiserror::Error)]
pub enum DeviceFilterError {
    /// A rule the v1 devices cgroup would refuse too.
    #[error("device rule {index} ({line:?}): {detail}")]
    Rule {
        /// Its position in the list.
        index: usize,
        /// The rule, as v1 would read it.
        line: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The cgroup directory cannot be opened.
    #[error("open cgroup {path}: {source}")]
    Open {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel refused the program.
    #[error("load the device program for cgroup {path}: {source}{}", verifier(.log))]
    Load {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
        /// The end of the verifier's log, if it gave one.
        log: String,
    },
    /// The kernel refused to attach the program.
    #[error("attach the device program to cgroup {path}: {source}")]
    Attach {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The programs already attached could not be listed.
    #[error("list the device programs of cgroup {path}: {source}")]
    Query {
        /// The cgroup directory.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// An earlier program of sandvisor's could not be detached (the new
    /// one is attached: both apply).
    #[error("detach the earlier device program {id} from cgroup {path}: {source}")]
    Detach {
        /// The cgroup directory.
        path: String,
        /// The earlier program's id.
        id: u32,
        /// The error.
        source: io::Error,
    },
}

impl DeviceFilterError {
    /// Whether the rules themselves are at fault (not the host).
    pub fn is_bad_rule(&self) -> bool {
        matches!(self, DeviceFilterError::Rule { .. })
    }
}

fn verifier(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; verifier log: {log}")
    }
}

/// One eBPF instruction (`struct bpf_insn`), in the layout the kernel
/// reads: opcode, destination and source registers in one byte, offset,
/// immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // The kernel declares the registers as bit fields (dst_reg:4,
        // src_reg:4), which C lays out from the low bits on little-endian
        // targets and from the high bits on big-endian ones.
        let regs = if cfg!(target_endian = "little") {
            (src << 4) | (dst & 0x0f)
        } else {
            (dst << 4) | (src & 0x0f)
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The opcode.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The destination register.
    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0x0f
        } else {
            self.regs >> 4
        }
    }

    /// The source register.
    pub fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0x0f
        }
    }

    /// The offset (of a memory access, or of a jump from the next instruction).
    pub fn off(&self) -> i16 {
        self.off
    }

    /// The immediate operand.
    pub fn imm(&self) -> i32 {
        self.imm
    }
}

/// An exception of the v1 model: a device class and the access bits that
/// differ from the default.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exception {
    kind: u32,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
}

/// What a rule list leaves in a v1 devices cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reduced {
    default_allow: bool,
    exceptions: Vec<Exception>,
}

/// Applies `rules` in order as the v1 devices cgroup does, from deny-all.
fn reduce(rules: &[DeviceRule]) -> Result<Reduced, DeviceFilterError> {
    let mut out = Reduced {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for (index, rule) in rules.iter().enumerate() {
        let bad = |detail: String| DeviceFilterError::Rule {
            index,
            line: rule.line(),
            detail,
        };
        let kind = match rule.kind {
            // v1 reads nothing after `a`: any numbers or access are ignored.
            'a' => {
                out.default_allow = rule.allow;
                out.exceptions.clear();
                continue;
            }
            'c' => DEV_CHAR,
            'b' => DEV_BLOCK,
            other => return Err(bad(format!("type {other:?} is not a, c or b"))),
        };
        let number = |n: Option<u64>, name: &str| match n {
            None => Ok(None),
            // v1 parses a u32 and takes all ones for `*`.
            Some(n) if n == u64::from(u32::MAX) => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| bad(format!("{name} {n} is over {}", u32::MAX))),
        };
        let (major, minor) = (number(rule.major, "major")?, number(rule.minor, "minor")?);
        let mut access = 0;
        for c in rule.access.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                other => return Err(bad(format!("access {other:?} is not r, w or m"))),
            };
        }
        let same = |e: &Exception| e.kind == kind && e.major == major && e.minor == minor;
        if rule.allow == out.default_allow {
            // Only the exception with exactly these numbers shrinks: a
            // wildcard one is left whole, as v1 leaves it.
            for e in out.exceptions.iter_mut().filter(|e| same(e)) {
                e.access &= !access;
            }
            out.exceptions.retain(|e| !same(e) || e.access != 0);
        } else if let Some(e) = out.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= access;
        } else {
            out.exceptions.push(Exception {
                kind,
                major,
                minor,
                access,
            });
        }
    }
    Ok(out)
}

/// Compiles device rules (applied in order, from deny-all, as the v1
/// devices cgroup applies them) into a `BPF_PROG_TYPE_CGROUP_DEVICE`
/// program that returns 1 to allow a request and 0 to deny it.
pub fn compile(rules: &[DeviceRule]) -> Result<Vec<Insn>, DeviceFilterError> {
    let reduced = reduce(rules)?;
    let mut prog = vec![
        Insn::new(LDX_MEM_W, R_TYPE, R1, CTX_ACCESS_TYPE, 0),
        Insn::new(ALU32_MOV_X, R_ACCESS, R_TYPE, 0, 0),
        Insn::new(ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
        Insn::new(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        Insn::new(LDX_MEM_W, R_MAJOR, R1, CTX_MAJOR, 0),
        Insn::new(LDX_MEM_W, R_MINOR, R1, CTX_MINOR, 0),
    ];
    // Exceptions are independent (any match decides), so each is one block
    // whose tests jump past its end, to the next block, on a mismatch.
    let decision = i32::from(!reduced.default_allow);
    for e in &reduced.exceptions {
        let mut block = vec![Insn::new(JMP32_JNE_K, R_TYPE, 0, 0, e.kind as i32)];
        // The numbers are compared as 32-bit values: the casts keep the bits.
        if let Some(major) = e.major {
            block.push(Insn::new(JMP32_JNE_K, R_MAJOR, 0, 0, major as i32));
        }
        if let Some(minor) = e.minor {
            block.push(Insn::new(JMP32_JNE_K, R_MINOR, 0, 0, minor as i32));
        }
        if reduced.default_allow {
            // A deny exception matches when any asked-for bit is in it.
            block.push(Insn::new(ALU32_MOV_X, R1, R_ACCESS, 0, 0));
            block.push(Insn::new(ALU32_AND_K, R1, 0, 0, e.access as i32));
            block.push(Insn::new(JMP32_JEQ_K, R1, 0, 0, 0));
        } else {
            // An allow exception matches when it has every asked-for bit.
            let missing = !e.access & 0xffff;
            block.push(Insn::new(JMP32_JSET_K, R_ACCESS, 0, 0, missing as i32));
        }
        block.push(Insn::new(ALU64_MOV_K, R0, 0, 0, decision));
        block.push(Insn::new(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            // Every test (class BPF_JMP32) skips to the end of the block,
            // a handful of instructions away.
            if insn.code & 0x07 == 0x06 {
                insn.off = (len - i - 1) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(Insn::new(
        ALU64_MOV_K,
        R0,
        0,
        0,
        i32::from(reduced.default_allow),
    ));
    prog.push(Insn::new(EXIT, 0, 0, 0, 0));
    Ok(prog)
}

/// Compiles `rules` and attaches the program to the cgroup v2 directory
/// `dir`, replacing one sandvisor attached there before (the new one is
/// attached first, so the cgroup is never without a filter).
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<(), DeviceFilterError> {
    let program = compile(rules)?;
    let path = || dir.display().to_string();
    let cgroup = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| DeviceFilterError::Open {
            path: path(),
            source,
        })?;
    let prog = load(&program).map_err(|(source, log)| DeviceFilterError::Load {
        path: path(),
        source,
        log,
    })?;
    let earlier = ours(&cgroup).map_err(|source| DeviceFilterError::Query {
        path: path(),
        source,
    })?;
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup.as_fd()),
        attach_bpf_fd: fd_u32(prog.as_fd()),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is the kernel's attach layout; both descriptors are
    // open for the call.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map_err(|source| DeviceFilterError::Attach {
        path: path(),
        source,
    })?;
    for (id, old) in earlier {
        let mut attr = AttachAttr {
            target_fd: fd_u32(cgroup.as_fd()),
            attach_bpf_fd: fd_u32(old.as_fd()),
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
            replace_bpf_fd: 0,
        };
        // SAFETY: as for the attach above.
        match unsafe { bpf(BPF_PROG_DETACH, &mut attr) } {
            Ok(_) => {}
            // Detached meanwhile: what was wanted.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(source) => {
                return Err(DeviceFilterError::Detach {
                    path: path(),
                    id,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to the fields used.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_PROG_ATTACH` and `BPF_PROG_DETACH`.
#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `union bpf_attr` for `BPF_PROG_QUERY`, up to the fields used.
#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

/// `union bpf_attr` for `BPF_PROG_GET_FD_BY_ID`.
#[repr(C)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// `union bpf_attr` for `BPF_OBJ_GET_INFO_BY_FD`.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info` up to the name (the kernel fills what fits).
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // Open descriptors are never negative.
    fd.as_raw_fd() as u32
}

/// Calls bpf(2) with `attr`, retrying while the kernel says EAGAIN (the
/// verifier gives up that way when a signal comes).
///
/// # Safety
///
/// `attr` must have the layout `union bpf_attr` has for `cmd`, and every
/// pointer and descriptor in it must be valid for the call.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    for _ in 0..5 {
        // SAFETY: the caller vouches for `attr`; its size is passed along,
        // so the kernel reads (and writes back) no more than it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T as *mut libc::c_void,
                size_of::<T>() as libc::c_uint,
            )
        };
        if rc >= 0 {
            return Ok(rc);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// Wraps a descriptor bpf(2) returned.
fn owned(rc: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(rc as RawFd) }
}

/// Loads the program; on failure, loads it again with a log to say why.
fn load(program: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME);
    let attr = || ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoadAttr::default()
    };
    let mut first = attr();
    // SAFETY: `first` is the load layout; the instructions and the license
    // outlive the call.
    let error = match unsafe { bpf(BPF_PROG_LOAD, &mut first) } {
        Ok(fd) => return Ok(owned(fd)),
        Err(e) => e,
    };
    // Without the right to load, the verifier never ran: nothing to log.
    if error.raw_os_error() == Some(libc::EPERM) {
        return Err((error, String::new()));
    }
    let mut log = vec![0u8; LOG_SIZE];
    let mut again = ProgLoadAttr {
        log_level: 1,
        log_size: LOG_SIZE as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..attr()
    };
    // SAFETY: as above, and the log buffer is `log_size` bytes, alive for
    // the call.
    match unsafe { bpf(BPF_PROG_LOAD, &mut again) } {
        // It went through this time: take it.
        Ok(fd) => Ok(owned(fd)),
        Err(_) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let text = text.trim();
            let mut start = text.len().saturating_sub(LOG_KEPT);
            while !text.is_char_boundary(start) {
                start += 1;
            }
            let ellipsis = if start > 0 { "..." } else { "" };
            Err((
                error,
                format!("{ellipsis}{}", &text[start..]).replace('\n', " | "),
            ))
        }
    }
}

/// The ids of the device programs attached directly to `cgroup`.
fn attached(cgroup: &File) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; MAX_PROGS];
    loop {
        let mut attr = QueryAttr {
            target_fd: fd_u32(cgroup.as_fd()),
            attach_type: BPF_CGROUP_DEVICE,
            query_flags: 0,
            attach_flags: 0,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            pad: 0,
        };
        // SAFETY: `attr` is the query layout; `prog_ids` has room for
        // `prog_cnt` ids, alive for the call.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // More than there was room for: the kernel said how many.
            Err(e)
                if e.raw_os_error() == Some(libc::ENOSPC) && attr.prog_cnt as usize > ids.len() =>
            {
                ids = vec![0; attr.prog_cnt as usize];
            }
            Err(e) => return Err(e),
        }
    }
}

/// The device programs sandvisor attached to `cgroup`: their ids, and
/// descriptors that detaching them needs.
fn ours(cgroup: &File) -> io::Result<Vec<(u32, OwnedFd)>> {
    let mut out = Vec::new();
    for id in attached(cgroup)? {
        let mut attr = GetFdAttr {
            prog_id: id,
            next_id: 0,
            open_flags: 0,
        };
        // SAFETY: `attr` is the get-fd-by-id layout; no pointers.
        let fd = match unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) } {
            Ok(fd) => owned(fd),
            // Gone since the query.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let mut info = ProgInfo::default();
        let mut attr = InfoAttr {
            bpf_fd: fd_u32(fd.as_fd()),
            info_len: size_of::<ProgInfo>() as u32,
            info: &mut info as *mut ProgInfo as u64,
        };
        // SAFETY: `attr` is the get-info layout; `info` has `info_len`
        // bytes, alive for the call, and its other pointers are null, so
        // the kernel copies nothing else out.
        unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
        let name_len = info.name.iter().position(|&b| b == 0).unwrap_or(16);
        if &info.name[..name_len] == PROG_NAME {
            out.push((id, fd));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
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
            e.kind == kind
                && e.major.is_none_or(|m| m == major)
                && e.minor.is_none_or(|m| m == minor)
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
}
