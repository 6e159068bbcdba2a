//! Frames: the 8-byte header, the frame encoder, and the incremental frame
//! decoder that binds received file descriptors to the frames they came with.
//!
//! The decoder is generic over the descriptor type so that it can be driven
//! with plain tokens (tests, fuzzing) as well as `OwnedFd`s (the server and
//! the client). It never allocates more than the bytes it has been given.

use std::collections::VecDeque;

use thiserror::Error;

/// The two magic bytes every frame starts with ("SV").
pub const MAGIC: [u8; 2] = [0x53, 0x56];
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Size of the fixed frame header.
pub const HEADER_LEN: usize = 8;
/// The largest body a frame may carry unless configured lower.
pub const MAX_BODY_LEN: u32 = 16 * 1024 * 1024;
/// The most file descriptors one frame may carry.
pub const MAX_FDS: u8 = 64;

/// The limits a decoder enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest accepted body length in bytes.
    pub max_body_len: u32,
    /// Largest accepted number of fds per frame.
    pub max_fds: u8,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_body_len: MAX_BODY_LEN,
            max_fds: MAX_FDS,
        }
    }
}

/// A framing error: the byte stream or its descriptors cannot be trusted any
/// more, so the connection must be closed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The first two header bytes are not "SV".
    #[error("bad frame magic {found:02x?} at stream offset {offset}, expected [53, 56]")]
    BadMagic {
        /// The two bytes found.
        found: [u8; 2],
        /// Where the header starts in the stream.
        offset: u64,
    },
    /// The version byte is not one this side speaks.
    #[error("unsupported protocol version {found} at stream offset {offset}, expected 1")]
    BadVersion {
        /// The version byte found.
        found: u8,
        /// Where the header starts in the stream.
        offset: u64,
    },
    /// The announced body length is over the limit.
    #[error("frame body length {len} is over the limit of {limit} bytes")]
    BodyTooLong {
        /// The announced length.
        len: u32,
        /// The configured limit.
        limit: u32,
    },
    /// The announced fd count is over the limit.
    #[error("frame announces {nfds} file descriptors, over the limit of {limit}")]
    TooManyFds {
        /// The announced count.
        nfds: u8,
        /// The configured limit.
        limit: u8,
    },
    /// The frame announces fds that did not arrive with its first byte.
    #[error("frame at stream offset {offset} announces {announced} file descriptors but only {available} arrived with it")]
    MissingFds {
        /// Where the frame starts in the stream.
        offset: u64,
        /// The announced count.
        announced: u8,
        /// How many were available.
        available: usize,
    },
    /// File descriptors arrived that no frame header claims.
    #[error("{count} file descriptors arrived with bytes {start}..{end} of the stream but no frame header there claims them")]
    LeftoverFds {
        /// How many were left over.
        count: usize,
        /// Stream offset of the first byte of the message they came with.
        start: u64,
        /// Stream offset just past its last byte.
        end: u64,
    },
}

/// A decoded frame: its body and the descriptors bound to it.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<F> {
    /// The body bytes (one CBOR item, unchecked).
    pub body: Vec<u8>,
    /// The descriptors bound to this frame, in the order they were sent.
    pub fds: Vec<F>,
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Number of fds bound to the frame.
    pub nfds: u8,
    /// Body length.
    pub len: u32,
}

/// Encodes a frame header for a body of `len` bytes carrying `nfds` fds.
pub fn encode_header(nfds: u8, len: u32) -> [u8; HEADER_LEN] {
    let l = len.to_be_bytes();
    [MAGIC[0], MAGIC[1], VERSION, nfds, l[0], l[1], l[2], l[3]]
}

/// Checks a header against the limits.
pub fn parse_header(
    bytes: &[u8; HEADER_LEN],
    offset: u64,
    limits: FrameLimits,
) -> Result<Header, FrameError> {
    if bytes[0..2] != MAGIC {
        return Err(FrameError::BadMagic {
            found: [bytes[0], bytes[1]],
            offset,
        });
    }
    if bytes[2] != VERSION {
        return Err(FrameError::BadVersion {
            found: bytes[2],
            offset,
        });
    }
    let nfds = bytes[3];
    if nfds > limits.max_fds {
        return Err(FrameError::TooManyFds {
            nfds,
            limit: limits.max_fds,
        });
    }
    let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if len > limits.max_body_len {
        return Err(FrameError::BodyTooLong {
            len,
            limit: limits.max_body_len,
        });
    }
    Ok(Header { nfds, len })
}

/// Descriptors received with one `recvmsg`, and the stream range of the
/// bytes that came with them.
#[derive(Debug)]
struct FdGroup<F> {
    start: u64,
    end: u64,
    fds: VecDeque<F>,
}

/// A frame whose header has been parsed and whose fds have been bound, but
/// whose body has not fully arrived.
#[derive(Debug)]
struct PendingFrame<F> {
    len: usize,
    fds: Vec<F>,
}

/// The incremental decoder. Feed it what each `recvmsg` returned with
/// [`FrameDecoder::push`], then take frames with [`FrameDecoder::next_frame`].
///
/// Binding rule (DESIGN.md, wire protocol v1): the fds of one `recvmsg` belong,
/// in order, to the frames whose headers start in that `recvmsg`'s bytes. Any
/// mismatch is reported as soon as it can be known.
#[derive(Debug)]
pub struct FrameDecoder<F> {
    limits: FrameLimits,
    /// Bytes received and not yet consumed start at `buf[consumed]`.
    buf: Vec<u8>,
    consumed: usize,
    /// Stream offset of `buf[consumed]`.
    offset: u64,
    /// Stream offset just past the last received byte.
    received: u64,
    groups: VecDeque<FdGroup<F>>,
    pending: Option<PendingFrame<F>>,
    failed: Option<FrameError>,
}

/// Above this capacity an empty buffer is released, so one large frame does
/// not pin its memory for the life of the connection.
const RETAINED_CAPACITY: usize = 64 * 1024;

impl<F> FrameDecoder<F> {
    /// A decoder enforcing `limits`.
    pub fn new(limits: FrameLimits) -> Self {
        FrameDecoder {
            limits,
            buf: Vec::new(),
            consumed: 0,
            offset: 0,
            received: 0,
            groups: VecDeque::new(),
            pending: None,
            failed: None,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> FrameLimits {
        self.limits
    }

    /// Bytes received but not yet returned as part of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// True when no partial frame and no unbound fds are held.
    pub fn is_idle(&self) -> bool {
        self.buffered() == 0 && self.pending.is_none() && self.groups.is_empty()
    }

    /// Descriptors held by the decoder (unbound, or bound to a partial frame).
    pub fn held_fds(&self) -> usize {
        self.groups.iter().map(|g| g.fds.len()).sum::<usize>()
            + self.pending.as_ref().map_or(0, |p| p.fds.len())
    }

    /// Adds the bytes and fds of one `recvmsg`. Returns an error (and keeps
    /// returning it) once the stream is known to be broken.
    pub fn push(&mut self, bytes: &[u8], fds: Vec<F>) -> Result<(), FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let start = self.received;
        let end = start + bytes.len() as u64;
        if self.consumed == self.buf.len() {
            self.buf.clear();
            self.consumed = 0;
            if self.buf.capacity() > RETAINED_CAPACITY {
                self.buf.shrink_to(RETAINED_CAPACITY);
            }
        } else if self.consumed > self.buf.len() / 2 {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
        self.received = end;
        if !fds.is_empty() {
            self.groups.push_back(FdGroup {
                start,
                end,
                fds: fds.into(),
            });
        }
        let next_header = self.next_header_offset();
        self.retire_groups_before(next_header)
    }

    /// Returns the next complete frame, `Ok(None)` when more bytes are
    /// needed, or the framing error that broke the stream.
    pub fn next_frame(&mut self) -> Result<Option<Frame<F>>, FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.pending.is_none() {
            if self.buffered() < HEADER_LEN {
                return Ok(None);
            }
            let mut raw = [0u8; HEADER_LEN];
            raw.copy_from_slice(&self.buf[self.consumed..self.consumed + HEADER_LEN]);
            let header_at = self.offset;
            let header = match parse_header(&raw, header_at, self.limits) {
                Ok(h) => h,
                Err(e) => return Err(self.fail(e)),
            };
            let fds = self.bind_fds(header_at, header.nfds)?;
            self.consumed += HEADER_LEN;
            self.offset += HEADER_LEN as u64;
            self.pending = Some(PendingFrame {
                len: header.len as usize,
                fds,
            });
            let next_header = self.offset + u64::from(header.len);
            self.retire_groups_before(next_header)?;
        }
        let len = self.pending.as_ref().map_or(0, |p| p.len);
        if self.buffered() < len {
            return Ok(None);
        }
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let body = self.buf[self.consumed..self.consumed + len].to_vec();
        self.consumed += len;
        self.offset += len as u64;
        Ok(Some(Frame {
            body,
            fds: pending.fds,
        }))
    }

    /// Stream offset where the next not-yet-parsed header starts.
    fn next_header_offset(&self) -> u64 {
        match &self.pending {
            Some(p) => self.offset + p.len as u64,
            None => self.offset,
        }
    }

    /// Takes `nfds` descriptors for a header starting at `header_at`.
    fn bind_fds(&mut self, header_at: u64, nfds: u8) -> Result<Vec<F>, FrameError> {
        self.retire_groups_before(header_at)?;
        let wanted = usize::from(nfds);
        if wanted == 0 {
            return Ok(Vec::new());
        }
        let available = match self.groups.front_mut() {
            Some(g) if g.start <= header_at && header_at < g.end => {
                if g.fds.len() >= wanted {
                    return Ok(g.fds.drain(..wanted).collect());
                }
                g.fds.len()
            }
            _ => 0,
        };
        Err(self.fail(FrameError::MissingFds {
            offset: header_at,
            announced: nfds,
            available,
        }))
    }

    /// Drops the groups that end at or before `boundary`: no unparsed header
    /// can start in them any more, so any fd left in one is unclaimed.
    fn retire_groups_before(&mut self, boundary: u64) -> Result<(), FrameError> {
        while let Some(group) = self.groups.front() {
            if group.end > boundary {
                break;
            }
            if !group.fds.is_empty() {
                let err = FrameError::LeftoverFds {
                    count: group.fds.len(),
                    start: group.start,
                    end: group.end,
                };
                return Err(self.fail(err));
            }
            self.groups.pop_front();
        }
        Ok(())
    }

    /// Marks the stream broken and releases every descriptor held.
    fn fail(&mut self, err: FrameError) -> FrameError {
        self.groups.clear();
        self.pending = None;
        self.buf = Vec::new();
        self.consumed = 0;
        self.failed = Some(err.clone());
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(nfds: u8, body: &[u8]) -> Vec<u8> {
        let mut v = encode_header(nfds, body.len() as u32).to_vec();
        v.extend_from_slice(body);
        v
    }

    fn decoder() -> FrameDecoder<u32> {
        FrameDecoder::new(FrameLimits::default())
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let mut stream = frame(0, b"hello");
        stream.extend(frame(0, b""));
        stream.extend(frame(0, b"world!"));
        let mut d = decoder();
        let mut bodies = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b), vec![]).unwrap();
            while let Some(f) = d.next_frame().unwrap() {
                bodies.push(f.body);
            }
        }
        assert_eq!(bodies, vec![b"hello".to_vec(), vec![], b"world!".to_vec()]);
        assert!(d.is_idle());
    }

    #[test]
    fn binds_fds_to_frames_starting_in_the_same_read() {
        let mut d = decoder();
        let mut bytes = frame(0, b"a");
        let fd_frame_at = bytes.len();
        bytes.extend(frame(2, b"bb"));
        bytes.extend(frame(1, b"c"));
        let third_at = bytes.len() - 9;
        // Earlier fd-less bytes merged with the message that carries the fds;
        // both fd-carrying headers start in that read.
        d.push(&bytes[..third_at + 1], vec![7, 8, 9]).unwrap();
        d.push(&bytes[third_at + 1..], vec![]).unwrap();
        let f1 = d.next_frame().unwrap().unwrap();
        let f2 = d.next_frame().unwrap().unwrap();
        let f3 = d.next_frame().unwrap().unwrap();
        assert_eq!((f1.body, f1.fds), (b"a".to_vec(), vec![]));
        assert_eq!((f2.body, f2.fds), (b"bb".to_vec(), vec![7, 8]));
        assert_eq!((f3.body, f3.fds), (b"c".to_vec(), vec![9]));
        assert!(d.is_idle());

        // Had the third header started in a later read, its fd would be
        // left over as soon as the second frame's length shows it.
        let mut d = decoder();
        d.push(&bytes[..fd_frame_at + 3], vec![7, 8, 9]).unwrap();
        d.push(&bytes[fd_frame_at + 3..], vec![]).unwrap();
        assert!(d.next_frame().unwrap().is_some());
        assert_eq!(
            d.next_frame(),
            Err(FrameError::LeftoverFds {
                count: 1,
                start: 0,
                end: (fd_frame_at + 3) as u64
            })
        );
        assert_eq!(d.held_fds(), 0);
    }

    #[test]
    fn missing_fds_are_an_error() {
        let mut d = decoder();
        d.push(&frame(2, b"x"), vec![1]).unwrap();
        assert_eq!(
            d.next_frame(),
            Err(FrameError::MissingFds {
                offset: 0,
                announced: 2,
                available: 1
            })
        );
        assert_eq!(d.held_fds(), 0);
    }

    #[test]
    fn fds_arriving_mid_body_are_left_over_at_once() {
        let mut d = decoder();
        let f = frame(0, &[0u8; 100]);
        d.push(&f[..50], vec![]).unwrap();
        assert!(d.next_frame().unwrap().is_none());
        assert_eq!(
            d.push(&f[50..60], vec![3]),
            Err(FrameError::LeftoverFds {
                count: 1,
                start: 50,
                end: 60
            })
        );
    }

    #[test]
    fn fds_with_a_header_that_claims_none_are_left_over() {
        let mut d = decoder();
        d.push(&frame(0, b"abc"), vec![4]).unwrap();
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::LeftoverFds { count: 1, .. })
        ));
    }

    #[test]
    fn fds_may_precede_the_rest_of_their_header() {
        let mut d = decoder();
        let f = frame(1, b"zz");
        d.push(&f[..3], vec![5]).unwrap();
        assert!(d.next_frame().unwrap().is_none());
        d.push(&f[3..], vec![]).unwrap();
        let got = d.next_frame().unwrap().unwrap();
        assert_eq!(got.fds, vec![5]);
    }

    #[test]
    fn header_errors_name_the_value() {
        let mut d = decoder();
        d.push(b"XX\x01\x00\x00\x00\x00\x00", vec![]).unwrap();
        assert_eq!(
            d.next_frame(),
            Err(FrameError::BadMagic {
                found: [b'X', b'X'],
                offset: 0
            })
        );
        let mut d = decoder();
        d.push(b"SV\x02\x00\x00\x00\x00\x00", vec![]).unwrap();
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::BadVersion { found: 2, .. })
        ));
        let mut d = decoder();
        d.push(&encode_header(65, 0), vec![]).unwrap();
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooManyFds {
                nfds: 65,
                limit: 64
            })
        );
        let mut d: FrameDecoder<u32> = FrameDecoder::new(FrameLimits {
            max_body_len: 10,
            max_fds: 64,
        });
        d.push(&encode_header(0, 11), vec![]).unwrap();
        assert_eq!(
            d.next_frame(),
            Err(FrameError::BodyTooLong { len: 11, limit: 10 })
        );
    }

    #[test]
    fn a_huge_announced_length_allocates_nothing_up_front() {
        let mut d = decoder();
        d.push(&encode_header(0, MAX_BODY_LEN), vec![]).unwrap();
        assert!(d.next_frame().unwrap().is_none());
        assert!(d.buf.capacity() < 1024);
    }
}
