//! The bpf(2) calls: load a program, attach and detach it, list what a
//! cgroup has attached.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::Insn;

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

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to the fields used.
#[repr(C)]
#[derive(Default)]
pub(super) struct ProgLoadAttr {
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
pub(super) struct ProgInfo {
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

/// Attaches `prog` to `cgroup`, after the programs already there.
pub(super) fn attach_program(cgroup: &File, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup.as_fd()),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is the kernel's attach layout; both descriptors are
    // open for the call.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// Detaches `prog` from `cgroup`.
pub(super) fn detach_program(cgroup: &File, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup.as_fd()),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    // SAFETY: as for the attach above.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// Loads the program; on failure, loads it again with a log to say why.
pub(super) fn load(program: &[Insn]) -> Result<OwnedFd, (io::Error, String)> {
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
pub(super) fn attached(cgroup: &File) -> io::Result<Vec<u32>> {
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
pub(super) fn ours(cgroup: &File) -> io::Result<Vec<(u32, OwnedFd)>> {
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
