//! The reduced rules as eBPF instructions.

use super::reduce::reduce;
use super::{DeviceFilterError, DeviceRule, CTX_ACCESS_TYPE, CTX_MAJOR, CTX_MINOR};

// Instruction classes and operations (include/uapi/linux/bpf_common.h, bpf.h).
pub(super) const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(super) const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub(super) const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub(super) const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub(super) const ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub(super) const JMP32_JEQ_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
pub(super) const JMP32_JNE_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
pub(super) const JMP32_JSET_K: u8 = 0x46; // BPF_JMP32 | BPF_JSET | BPF_K
pub(super) const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: r1 holds the context on entry; the prologue loads the
// request into r2..r5, after which r1 is free as a scratch register.
pub(super) const R0: u8 = 0;
pub(super) const R1: u8 = 1;
pub(super) const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

/// One eBPF instruction (`struct bpf_insn`), in the layout the kernel
/// reads: opcode, destination and source registers in one byte, offset,
/// immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    pub(super) regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    pub(super) fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
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
