//! The usage page: one page of a sealed memfd that the supervisor keeps
//! current with the sandbox's memory figures, so that a monitor holding a
//! read-only descriptor of it reads them without an RPC.
//!
//! Layout (PROTOCOL.md, "The usage page"): little-endian u64 words,
//!
//! ```text
//! offset  field
//! 0       magic            "SVUSAGE1"
//! 8       version (u32), then length (u32): the record's bytes, 88
//! 16      sequence         odd while the writer writes, even when stable
//! 24      updated_unix_ns  when the figures were read
//! 32..88  total, anonymous, page_cache, mapped, shmem, kernel, supervisor_rss
//! ```
//!
//! A sequence lock, not a mutex, because readers live in other processes
//! and must never be able to block the writer: the writer makes the
//! sequence odd, writes, makes it even again; a reader copies the record
//! and keeps the copy only if the sequence was even and did not change
//! across it. Every word is accessed through `AtomicU64`, so a reader in
//! another process never sees a torn word, and the fences below order the
//! sequence against the figures.

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use thiserror::Error;

use super::cgroup_stats::MemoryBreakdown;

/// The first word: "SVUSAGE1" in little-endian byte order.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SVUSAGE1");
/// The layout version this module writes and reads.
pub const VERSION: u32 = 1;
/// The size of the memfd: one page.
pub const PAGE_LEN: usize = 4096;
/// The words of the record.
const WORDS: usize = 11;
/// The record's length in bytes, as its header states it.
pub const RECORD_LEN: u32 = (WORDS * 8) as u32;

const MAGIC_WORD: usize = 0;
const VERSION_WORD: usize = 1;
const SEQUENCE_WORD: usize = 2;
const UPDATED_WORD: usize = 3;
const FIGURES_WORD: usize = 4;

/// How long a reader waits for a write in progress to end before giving
/// up: a write takes nanoseconds, so only a writer killed mid-write (the
/// supervisor's death) can make it wait this long.
const READ_PATIENCE: Duration = Duration::from_millis(100);

/// The figures the page holds, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    /// The sandbox's memory cgroup, broken down.
    #[serde(flatten)]
    pub memory: MemoryBreakdown,
    /// The supervisor's own resident set.
    pub supervisor_rss: u64,
}

impl Figures {
    fn to_words(self) -> [u64; 7] {
        let m = self.memory;
        [
            m.total,
            m.anonymous,
            m.page_cache,
            m.mapped,
            m.shmem,
            m.kernel,
            self.supervisor_rss,
        ]
    }

    fn from_words(w: [u64; 7]) -> Figures {
        Figures {
            memory: MemoryBreakdown {
                total: w[0],
                anonymous: w[1],
                page_cache: w[2],
                mapped: w[3],
                shmem: w[4],
                kernel: w[5],
            },
            supervisor_rss: w[6],
        }
    }
}

/// A consistent copy of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The sequence it was read at (even).
    pub sequence: u64,
    /// When the writer read the figures, in nanoseconds since the Unix epoch.
    pub updated_unix_ns: u64,
    /// The figures.
    pub figures: Figures,
}

/// Why the page could not be made or read.
#[derive(Debug, Error)]
pub enum PageError {
    /// A system call failed.
    #[error("{what} the usage page: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The descriptor is not a usage page this version reads.
    #[error("not a usage page: {0}")]
    NotAPage(String),
    /// The writer stayed in the middle of a write.
    #[error("the usage page stayed mid-update (sequence {sequence}) for {READ_PATIENCE:?}: its supervisor may be gone")]
    Busy {
        /// The odd sequence seen last.
        sequence: u64,
    },
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> PageError {
    move |e| PageError::Sys {
        what,
        source: e.into(),
    }
}

/// A shared mapping of the page.
struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory, owned by this value alone
// and only ever accessed through atomics, so it may move between threads.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, prot: ProtFlags) -> Result<Mapping, PageError> {
        let len = NonZeroUsize::new(PAGE_LEN).ok_or_else(|| PageError::NotAPage("empty".into()))?;
        // SAFETY: a fresh mapping chosen by the kernel (no address given)
        // cannot alias memory Rust owns; callers made sure the file is at
        // least PAGE_LEN long, so every byte of it is backed.
        let ptr =
            unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0) }.map_err(sys("map"))?;
        Ok(Mapping { ptr, len: PAGE_LEN })
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is page-aligned (so 8-aligned, as AtomicU64
        // needs), readable and PAGE_LEN >= WORDS * 8 bytes long for as long
        // as `self` lives; AtomicU64 has u64's size and no invalid bit
        // patterns; everyone who touches these bytes (this process and
        // others mapping the same page) does so through atomic accesses.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), WORDS) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Mapping::new` with this length,
        // and no reference into it outlives `self` (words() borrows self).
        let _ = unsafe { munmap(self.ptr, self.len) };
    }
}

/// The writer's side: the memfd and its writable mapping.
pub struct UsagePage {
    memfd: OwnedFd,
    map: Mapping,
    sequence: u64,
}

impl UsagePage {
    /// Makes the page: a memfd of one page, mapped shared and writable,
    /// then sealed so that nobody can shrink or grow it (a reader's mapping
    /// stays backed) nor write it other than through this mapping, even
    /// by reopening it through /proc.
    pub fn create() -> Result<UsagePage, PageError> {
        let name = c"sandvisor-usage";
        let flags = MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING;
        // MFD_NOEXEC_SEAL: hosts with vm.memfd_noexec = 2 refuse memfds
        // without it; kernels before 6.3 do not know it (EINVAL).
        let memfd = match memfd_create(
            name,
            flags | MFdFlags::from_bits_retain(libc::MFD_NOEXEC_SEAL),
        ) {
            Err(nix::Error::EINVAL) => memfd_create(name, flags),
            other => other,
        }
        .map_err(sys("create"))?;
        nix::unistd::ftruncate(&memfd, PAGE_LEN as libc::off_t).map_err(sys("size"))?;
        let map = Mapping::new(memfd.as_fd(), ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)?;
        // F_SEAL_FUTURE_WRITE leaves this one writable mapping working.
        let seals = SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_FUTURE_WRITE
            | SealFlag::F_SEAL_SEAL;
        fcntl(&memfd, FcntlArg::F_ADD_SEALS(seals)).map_err(sys("seal"))?;
        let words = map.words();
        words[MAGIC_WORD].store(MAGIC.to_le(), Ordering::Relaxed);
        let version = u64::from(VERSION) | (u64::from(RECORD_LEN) << 32);
        words[VERSION_WORD].store(version.to_le(), Ordering::Relaxed);
        // Readers get the page only after this (through a descriptor
        // passed over a socket), which orders these stores before theirs.
        Ok(UsagePage {
            memfd,
            map,
            sequence: 0,
        })
    }

    /// Publishes new figures, read at `updated_unix_ns`.
    pub fn publish(&mut self, figures: Figures, updated_unix_ns: u64) {
        self.publish_with(figures, updated_unix_ns, || {});
    }

    /// `publish`, running `mid_write` while the sequence is odd (tests
    /// catch a reader in the middle of a write with it).
    fn publish_with(&mut self, figures: Figures, updated_unix_ns: u64, mid_write: impl FnOnce()) {
        let words = self.map.words();
        let sequence = &words[SEQUENCE_WORD];
        sequence.store((self.sequence + 1).to_le(), Ordering::Relaxed);
        // Orders the odd sequence before the figures: a reader that sees
        // any new figure also sees the sequence change.
        fence(Ordering::Release);
        words[UPDATED_WORD].store(updated_unix_ns.to_le(), Ordering::Relaxed);
        for (word, value) in words[FIGURES_WORD..].iter().zip(figures.to_words()) {
            word.store(value.to_le(), Ordering::Relaxed);
        }
        mid_write();
        self.sequence += 2;
        sequence.store(self.sequence.to_le(), Ordering::Release);
    }

    /// The sequence of the last publish (0 before any).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// A new read-only descriptor of the page, to hand to a monitor: the
    /// memfd reopened through /proc with O_RDONLY, so that it cannot be
    /// mapped writable (and the seals forbid writing it at all).
    pub fn read_only_fd(&self) -> Result<OwnedFd, PageError> {
        let path = format!("/proc/self/fd/{}", self.memfd.as_raw_fd());
        File::open(&path)
            .map(OwnedFd::from)
            .map_err(|source| PageError::Sys {
                what: "reopen read-only",
                source,
            })
    }
}

/// The reader's side: a read-only mapping of a page.
pub struct PageReader {
    map: Mapping,
}

impl PageReader {
    /// Maps the page behind `fd` after checking that it is one: long
    /// enough and sealed against shrinking (so the mapping cannot lose its
    /// backing under the reader, which would be a SIGBUS), with this
    /// version's magic, version and length.
    pub fn open(fd: BorrowedFd<'_>) -> Result<PageReader, PageError> {
        let stat = nix::sys::stat::fstat(fd).map_err(sys("stat"))?;
        if stat.st_size < PAGE_LEN as i64 {
            return Err(PageError::NotAPage(format!(
                "{} bytes long, expected {PAGE_LEN}",
                stat.st_size
            )));
        }
        let seals = fcntl(fd, FcntlArg::F_GET_SEALS)
            .map_err(|e| PageError::NotAPage(format!("no seals: {e}")))?;
        if seals & libc::F_SEAL_SHRINK == 0 {
            return Err(PageError::NotAPage("not sealed against shrinking".into()));
        }
        let map = Mapping::new(fd, ProtFlags::PROT_READ)?;
        let words = map.words();
        let magic = u64::from_le(words[MAGIC_WORD].load(Ordering::Relaxed));
        if magic != MAGIC {
            return Err(PageError::NotAPage(format!("magic {magic:#018x}")));
        }
        let header = u64::from_le(words[VERSION_WORD].load(Ordering::Relaxed));
        let (version, length) = (header as u32, (header >> 32) as u32);
        if version != VERSION || length < RECORD_LEN {
            return Err(PageError::NotAPage(format!(
                "version {version} with {length} bytes, expected version {VERSION} with {RECORD_LEN}"
            )));
        }
        Ok(PageReader { map })
    }

    /// A consistent snapshot: retried while the writer is mid-write, for
    /// up to READ_PATIENCE.
    pub fn read(&self) -> Result<Snapshot, PageError> {
        let started = Instant::now();
        let mut tries = 0u32;
        loop {
            if let Ok(snapshot) = self.try_read(|| {}) {
                return Ok(snapshot);
            }
            tries += 1;
            if started.elapsed() > READ_PATIENCE {
                let sequence =
                    u64::from_le(self.map.words()[SEQUENCE_WORD].load(Ordering::Relaxed));
                return Err(PageError::Busy { sequence });
            }
            // A write is a few stores: spin first, then let the writer's
            // thread run if it was preempted mid-write.
            if tries < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// One attempt: the snapshot, or the sequence that made it fail (odd,
    /// or changed while copying). `between` runs after the figures are
    /// copied and before the sequence is checked again.
    fn try_read(&self, between: impl FnOnce()) -> Result<Snapshot, u64> {
        let words = self.map.words();
        let before = u64::from_le(words[SEQUENCE_WORD].load(Ordering::Acquire));
        if before % 2 == 1 {
            return Err(before);
        }
        let updated = u64::from_le(words[UPDATED_WORD].load(Ordering::Relaxed));
        let mut figures = [0u64; 7];
        for (value, word) in figures.iter_mut().zip(&words[FIGURES_WORD..]) {
            *value = u64::from_le(word.load(Ordering::Relaxed));
        }
        between();
        // Orders the copies before the second look at the sequence: if any
        // copy saw a newer write, this load sees that write's odd sequence.
        fence(Ordering::Acquire);
        let after = u64::from_le(words[SEQUENCE_WORD].load(Ordering::Relaxed));
        if after != before {
            return Err(after);
        }
        Ok(Snapshot {
            sequence: before,
            updated_unix_ns: updated,
            figures: Figures::from_words(figures),
        })
    }
}

/// Reads a snapshot of the page behind `fd`.
pub fn read(fd: BorrowedFd<'_>) -> Result<Snapshot, PageError> {
    PageReader::open(fd)?.read()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn figures(n: u64) -> Figures {
        Figures {
            memory: MemoryBreakdown {
                total: n,
                anonymous: n + 1,
                page_cache: n + 2,
                mapped: n + 3,
                shmem: n + 4,
                kernel: n + 5,
            },
            supervisor_rss: n + 6,
        }
    }

    #[test]
    fn a_published_snapshot_reads_back_through_a_read_only_descriptor() {
        let mut page = UsagePage::create().unwrap();
        let fd = page.read_only_fd().unwrap();
        let reader = PageReader::open(fd.as_fd()).unwrap();
        let first = reader.read().unwrap();
        assert_eq!((first.sequence, first.updated_unix_ns), (0, 0));
        page.publish(figures(100), 42);
        assert_eq!(page.sequence(), 2);
        let snapshot = read(fd.as_fd()).unwrap();
        assert_eq!(
            snapshot,
            Snapshot {
                sequence: 2,
                updated_unix_ns: 42,
                figures: figures(100)
            }
        );
        page.publish(figures(7), 43);
        page.publish(figures(8), 44);
        let snapshot = reader.read().unwrap();
        assert_eq!(snapshot.sequence, 6);
        assert_eq!(snapshot.figures, figures(8));
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let mut page = UsagePage::create().unwrap();
        page.publish(figures(0x0102), 0x0a0b);
        let fd = page.read_only_fd().unwrap();
        let bytes = std::fs::read(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(bytes.len(), PAGE_LEN);
        let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(&bytes[..8], b"SVUSAGE1");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 88);
        assert_eq!((word(2), word(3)), (2, 0x0a0b));
        let names = [0x0102, 0x0103, 0x0104, 0x0105, 0x0106, 0x0107, 0x0108];
        for (i, want) in names.into_iter().enumerate() {
            assert_eq!(word(4 + i), want, "word {}", 4 + i);
        }
        assert!(bytes[88..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_read_during_a_write_or_across_one_is_retried() {
        let mut page = UsagePage::create().unwrap();
        page.publish(figures(1), 1);
        let fd = page.read_only_fd().unwrap();
        let reader = PageReader::open(fd.as_fd()).unwrap();
        // Mid-write: the sequence is odd, the attempt fails.
        page.publish_with(figures(2), 2, || {
            assert_eq!(reader.try_read(|| {}), Err(3));
        });
        // A write lands between the copy and the second look: the copy
        // mixes nothing, it is thrown away.
        let torn = reader.try_read(|| page.publish(figures(3), 3));
        assert_eq!(torn, Err(6));
        let snapshot = reader.read().unwrap();
        assert_eq!((snapshot.sequence, snapshot.figures), (6, figures(3)));
    }

    #[test]
    fn concurrent_reads_never_see_a_mix_of_two_writes() {
        let mut page = UsagePage::create().unwrap();
        page.publish(figures(0), 0);
        let fd = page.read_only_fd().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    page.publish(figures(n * 10), n);
                    // A gap about as long as a read, so that reads both
                    // fall between writes and straddle them.
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                }
                n
            })
        };
        let reader = PageReader::open(fd.as_fd()).unwrap();
        // Reads until it has seen this many writes of the other thread,
        // however long the scheduler takes to run it: a count of reads
        // would race it.
        const WRITES_SEEN: u64 = 1_000;
        let mut seen = 0;
        // The sequence of the write made above, before the writer's.
        let mut last = 2;
        let mut busy = 0;
        while seen < WRITES_SEEN {
            // A writer that never pauses can keep a reader out (Busy) on a
            // loaded machine: that is the reader's honest answer, not a mix.
            let s = loop {
                match reader.read() {
                    Ok(s) => break s,
                    Err(PageError::Busy { .. }) => busy += 1,
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(s.sequence % 2, 0);
            assert!(s.sequence >= last, "sequence went back");
            if s.sequence > last {
                seen += 1;
            }
            last = s.sequence;
            // Every field of one write agrees with its update time.
            assert_eq!(s.figures, figures(s.updated_unix_ns * 10));
            assert_eq!(s.sequence, s.updated_unix_ns * 2 + 2);
        }
        stop.store(true, Ordering::Relaxed);
        assert!(writer.join().unwrap() >= WRITES_SEEN);
        eprintln!("{busy} reads found the writer busy");
    }

    #[test]
    fn a_stuck_writer_makes_the_reader_give_up() {
        let mut page = UsagePage::create().unwrap();
        let fd = page.read_only_fd().unwrap();
        let reader = PageReader::open(fd.as_fd()).unwrap();
        page.publish_with(figures(1), 1, || {
            assert!(matches!(
                reader.read(),
                Err(PageError::Busy { sequence: 1 })
            ));
        });
    }

    #[test]
    fn readers_cannot_write_or_resize_the_page() {
        let page = UsagePage::create().unwrap();
        let fd = page.read_only_fd().unwrap();
        let len = NonZeroUsize::new(PAGE_LEN).unwrap();
        let rw = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: a fresh mapping (expected to fail) aliases nothing.
        let writable = unsafe { mmap(None, len, rw, MapFlags::MAP_SHARED, fd.as_fd(), 0) };
        assert_eq!(writable.err(), Some(nix::Error::EACCES));
        // Reopened for writing through /proc: the seals still refuse.
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let reopened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert_eq!(
            nix::unistd::write(&reopened, b"x").err(),
            Some(nix::Error::EPERM)
        );
        // SAFETY: as above.
        let writable = unsafe { mmap(None, len, rw, MapFlags::MAP_SHARED, reopened.as_fd(), 0) };
        assert_eq!(writable.err(), Some(nix::Error::EPERM));
        assert_eq!(
            nix::unistd::ftruncate(&reopened, 0).err(),
            Some(nix::Error::EPERM)
        );
    }

    #[test]
    fn other_descriptors_are_not_taken_for_a_page() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(PAGE_LEN as u64).unwrap();
        assert!(matches!(
            PageReader::open(file.as_fd()),
            Err(PageError::NotAPage(_))
        ));
        let short = memfd_create(c"short", MFdFlags::MFD_ALLOW_SEALING).unwrap();
        assert!(matches!(
            PageReader::open(short.as_fd()),
            Err(PageError::NotAPage(_))
        ));
        // Sealed and long enough, but not written as a page.
        let blank = memfd_create(c"blank", MFdFlags::MFD_ALLOW_SEALING).unwrap();
        nix::unistd::ftruncate(&blank, PAGE_LEN as libc::off_t).unwrap();
        fcntl(&blank, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK)).unwrap();
        let refused = PageReader::open(blank.as_fd()).err().unwrap();
        assert_eq!(
            refused.to_string(),
            "not a usage page: magic 0x0000000000000000"
        );
    }
}
