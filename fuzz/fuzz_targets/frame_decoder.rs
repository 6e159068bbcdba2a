//! Drives `FrameDecoder<u32>` with a stream of reads, as `recvmsg` would
//! deliver them, and checks every answer against a model of the stream.
//!
//! Input layout (hand-rolled, so that seeds are easy to write by hand):
//!
//! * byte 0 picks the limits: `% 4 == 2` small (`max_body_len` = byte 1,
//!   `max_fds` = byte 2 % 65), `% 4 == 3` wide (`max_body_len` = the
//!   little-endian u32 of bytes 1..5 % (16 MiB + 1), `max_fds` = byte 5 % 65),
//!   otherwise the defaults;
//! * then reads, each `[ctl] [len lo] [len hi] [len bytes]`: the read carries
//!   `ctl >> 1` fds when `ctl` is odd and none when it is even. Missing
//!   bytes read as zero and a short last read is cut to what remains;
//! * except that `ctl == 0xfe` is a filler read `[0xfe] [n lo] [n hi] [byte]`
//!   of `16 * n` copies of `byte` and no fds, so that frames and buffers
//!   larger than an input (up to [`FILLER_BUDGET`] in all) get exercised.
//!
//! Each read's fds are unique increasing `u32` tokens. After every push the
//! target calls `next_frame` until `Ok(None)` or `Err`, and checks:
//!
//! * no panic;
//! * each frame is the next one of the stream: its header is at the model's
//!   offset and matches its body length and fd count, its body is the stream
//!   bytes after it, and it respects `max_body_len` and `max_fds`;
//! * fds: every token comes out at most once and in increasing order (in
//!   fact exactly the next ones sent), each frame's tokens came with the read
//!   that holds its header's first byte, and no frame is parsed while an
//!   earlier read still has unclaimed tokens;
//! * `Ok(None)` only when the stream really holds no complete frame, and
//!   never for a header the limits refuse or whose fds did not arrive;
//! * every error is justified by the stream (header errors name the header
//!   at the model's offset, `MissingFds` / `LeftoverFds` name real reads),
//!   and leftover fds are reported as soon as no header can claim them;
//! * once an error is returned, every later `push` / `next_frame` returns
//!   the same error, and `held_fds()` and `buffered()` are 0;
//! * `buffered()` is exactly the stream bytes not yet returned (less the
//!   header of a frame in progress), never more than the bytes pushed, at
//!   most `HEADER_LEN + max_body_len + last read length`, and below
//!   `HEADER_LEN` (no frame in progress) or the body length (frame in
//!   progress) once drained, plus the last read's length right after a push;
//! * `held_fds()` is the tokens pushed and not yet returned; `is_idle()`
//!   holds exactly when nothing is buffered, in progress or held.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sandvisor_actors::wire::frame::{
    encode_header, HEADER_LEN, MAGIC, MAX_BODY_LEN, MAX_FDS, VERSION,
};
use sandvisor_actors::wire::{Frame, FrameDecoder, FrameError, FrameLimits};

/// The `ctl` byte of a filler read.
const FILLER: u8 = 0xfe;
/// The most filler bytes one input may push.
const FILLER_BUDGET: usize = 512 << 10;

thread_local! {
    /// Buffer for filler reads, kept across runs to spare an allocation.
    static FILL: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The fuzz input, read front to back; bytes past its end read as zero.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn u16_le(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32_le(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn limits(&mut self) -> FrameLimits {
        match self.byte() % 4 {
            2 => FrameLimits {
                max_body_len: u32::from(self.byte()),
                max_fds: self.byte() % (MAX_FDS + 1),
            },
            3 => FrameLimits {
                max_body_len: self.u32_le() % (MAX_BODY_LEN + 1),
                max_fds: self.byte() % (MAX_FDS + 1),
            },
            _ => FrameLimits::default(),
        }
    }
}

/// One pushed read: its stream range and the tokens sent with it.
struct Read {
    start: usize,
    end: usize,
    first_token: u32,
    nfds: u32,
}

impl Read {
    fn end_token(&self) -> u32 {
        self.first_token + self.nfds
    }
}

/// What the decoder must have done with the stream so far.
struct Model {
    limits: FrameLimits,
    /// Every byte pushed.
    stream: Vec<u8>,
    reads: Vec<Read>,
    /// Stream offset of the header of the next frame to come out.
    pos: usize,
    /// The header at `pos` was consumed and its body is incomplete.
    pending: bool,
    /// Tokens pushed; tokens `0..tokens_in` have been handed over.
    tokens_in: u32,
    /// Tokens returned in frames: exactly `0..tokens_out`.
    tokens_out: u32,
    last_read_len: usize,
    failed: Option<FrameError>,
}

impl Model {
    fn new(limits: FrameLimits) -> Self {
        Model {
            limits,
            stream: Vec::new(),
            reads: Vec::new(),
            pos: 0,
            pending: false,
            tokens_in: 0,
            tokens_out: 0,
            last_read_len: 0,
            failed: None,
        }
    }

    fn total(&self) -> usize {
        self.stream.len()
    }

    /// Stream bytes from the next frame's header on.
    fn avail(&self) -> usize {
        self.total() - self.pos
    }

    /// What a correct decoder makes of the complete header at `pos`.
    fn reference_header(&self) -> Result<(u8, u32), FrameError> {
        let h = &self.stream[self.pos..self.pos + HEADER_LEN];
        let offset = self.pos as u64;
        if h[0..2] != MAGIC {
            return Err(FrameError::BadMagic {
                found: [h[0], h[1]],
                offset,
            });
        }
        if h[2] != VERSION {
            return Err(FrameError::BadVersion {
                found: h[2],
                offset,
            });
        }
        let nfds = h[3];
        if nfds > self.limits.max_fds {
            return Err(FrameError::TooManyFds {
                nfds,
                limit: self.limits.max_fds,
            });
        }
        let len = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if len > self.limits.max_body_len {
            return Err(FrameError::BodyTooLong {
                len,
                limit: self.limits.max_body_len,
            });
        }
        Ok((nfds, len))
    }

    /// Body length of the frame in progress.
    fn pending_len(&self) -> usize {
        match self.reference_header() {
            Ok((_, len)) => len as usize,
            Err(e) => panic!("frame in progress under a refused header: {e}"),
        }
    }

    /// The non-empty read holding stream byte `at` (`at < total`).
    fn read_holding(&self, at: usize) -> &Read {
        assert!(at < self.total());
        let i = self.reads.partition_point(|r| r.end <= at);
        let read = &self.reads[i];
        assert!(read.start <= at && at < read.end);
        read
    }

    /// Tokens of `read` not yet returned in a frame.
    fn unclaimed(&self, read: &Read) -> u32 {
        read.end_token() - self.tokens_out.max(read.first_token).min(read.end_token())
    }

    /// A header is parsed at `pos` only once every earlier read's tokens
    /// came out, and it can only take tokens of the read holding it.
    fn check_binding_point(&self, nfds: u8) {
        let read = self.read_holding(self.pos);
        assert!(
            self.tokens_out >= read.first_token,
            "header at {} parsed while tokens {}..{} of earlier reads are unclaimed",
            self.pos,
            self.tokens_out,
            read.first_token
        );
        assert!(
            u32::from(nfds) <= self.unclaimed(read),
            "header at {} took {} fds but its read has only {} left",
            self.pos,
            nfds,
            self.unclaimed(read)
        );
    }

    fn push(&mut self, decoder: &mut FrameDecoder<u32>, bytes: &[u8], nfds: u32) {
        let first_token = self.tokens_in;
        let tokens: Vec<u32> = (first_token..first_token + nfds).collect();
        self.tokens_in += nfds;
        let start = self.total();
        self.stream.extend_from_slice(bytes);
        self.reads.push(Read {
            start,
            end: self.total(),
            first_token,
            nfds,
        });
        self.last_read_len = bytes.len();
        let result = decoder.push(bytes, tokens);
        match (&self.failed, result) {
            (Some(first), result) => assert_eq!(result, Err(first.clone())),
            (None, Ok(())) => {}
            (None, Err(err)) => {
                assert!(
                    matches!(err, FrameError::LeftoverFds { .. }),
                    "push can only find leftover fds, got {err:?}"
                );
                self.check_leftover(&err, self.pending);
                self.failed = Some(err);
            }
        }
        self.check_state(decoder, true);
    }

    fn drain(&mut self, decoder: &mut FrameDecoder<u32>) {
        loop {
            let result = decoder.next_frame();
            if let Some(first) = &self.failed {
                assert_eq!(result, Err(first.clone()));
                break;
            }
            match result {
                Ok(Some(frame)) => {
                    self.check_frame(frame);
                    self.check_state(decoder, true);
                }
                Ok(None) => {
                    self.check_incomplete();
                    break;
                }
                Err(err) => {
                    self.check_error(&err);
                    self.failed = Some(err);
                    break;
                }
            }
        }
        self.check_state(decoder, false);
    }

    fn check_frame(&mut self, frame: Frame<u32>) {
        let Frame { body, fds } = frame;
        assert!(
            body.len() <= self.limits.max_body_len as usize,
            "body of {} bytes over the limit {}",
            body.len(),
            self.limits.max_body_len
        );
        assert!(
            fds.len() <= usize::from(self.limits.max_fds),
            "{} fds over the limit {}",
            fds.len(),
            self.limits.max_fds
        );
        let end = self.pos + HEADER_LEN + body.len();
        assert!(
            end <= self.total(),
            "frame at {} ends at {end}, past the {} bytes pushed",
            self.pos,
            self.total()
        );
        assert_eq!(
            self.stream[self.pos..self.pos + HEADER_LEN],
            encode_header(fds.len() as u8, body.len() as u32),
            "frame at {} does not match the header sent",
            self.pos
        );
        assert_eq!(body, self.stream[self.pos + HEADER_LEN..end]);
        self.check_binding_point(fds.len() as u8);
        let expected: Vec<u32> = (self.tokens_out..self.tokens_out + fds.len() as u32).collect();
        assert_eq!(fds, expected, "frame at {} carries the wrong fds", self.pos);
        self.tokens_out += fds.len() as u32;
        self.pos = end;
        self.pending = false;
    }

    /// `next_frame` said more bytes are needed.
    fn check_incomplete(&mut self) {
        if self.avail() < HEADER_LEN {
            assert!(!self.pending);
            return;
        }
        let (nfds, len) = match self.reference_header() {
            Ok(header) => header,
            Err(e) => panic!("Ok(None) for a header that must fail with {e:?}"),
        };
        assert!(
            self.avail() - HEADER_LEN < len as usize,
            "Ok(None) though the frame at {} is complete",
            self.pos
        );
        if !self.pending {
            self.check_binding_point(nfds);
        }
        self.pending = true;
    }

    /// `next_frame` failed with `err`: the stream must justify it.
    fn check_error(&self, err: &FrameError) {
        match err {
            FrameError::BadMagic { .. }
            | FrameError::BadVersion { .. }
            | FrameError::TooManyFds { .. }
            | FrameError::BodyTooLong { .. } => {
                assert!(!self.pending && self.avail() >= HEADER_LEN);
                assert_eq!(self.reference_header(), Err(err.clone()));
            }
            FrameError::MissingFds {
                offset,
                announced,
                available,
            } => {
                assert!(!self.pending && self.avail() >= HEADER_LEN);
                assert_eq!(*offset, self.pos as u64);
                assert!(matches!(self.reference_header(), Ok((n, _)) if n == *announced));
                let read = self.read_holding(self.pos);
                assert!(self.tokens_out >= read.first_token);
                let left = self.unclaimed(read);
                assert!(left < u32::from(*announced));
                assert_eq!(*available, left as usize);
            }
            FrameError::LeftoverFds { .. } => {
                let parsed =
                    self.pending || (self.avail() >= HEADER_LEN && self.reference_header().is_ok());
                self.check_leftover(err, parsed);
            }
        }
    }

    /// A `LeftoverFds` error names a read whose tokens did not all come
    /// out, and that ends where no unparsed header can start any more.
    fn check_leftover(&self, err: &FrameError, header_parsed: bool) {
        let FrameError::LeftoverFds { count, start, end } = err else {
            panic!("not a leftover error: {err:?}");
        };
        let boundary = if header_parsed {
            self.pos + HEADER_LEN + self.pending_len()
        } else {
            self.pos
        };
        assert!(
            *end as usize <= boundary,
            "fds of bytes {start}..{end} called left over before offset {boundary}"
        );
        let justified = self.reads.iter().any(|r| {
            r.start as u64 == *start
                && r.end as u64 == *end
                && *count >= 1
                && *count <= self.unclaimed(r) as usize
        });
        assert!(justified, "no read justifies {err:?}");
    }

    /// Leftover fds are reported as soon as they are known: no read that
    /// ends where no unparsed header can start any more (at or before the
    /// next header, or the end of the body in progress) still holds tokens
    /// that no frame took.
    fn check_no_late_leftovers(&self) {
        let (boundary, claimed) = if self.pending {
            let nfds = match self.reference_header() {
                Ok((nfds, _)) => u32::from(nfds),
                Err(e) => panic!("frame in progress under a refused header: {e}"),
            };
            (
                self.pos + HEADER_LEN + self.pending_len(),
                self.tokens_out + nfds,
            )
        } else {
            (self.pos, self.tokens_out)
        };
        let done = self.reads.partition_point(|r| r.end <= boundary);
        if let Some(last) = done.checked_sub(1).map(|i| &self.reads[i]) {
            assert!(
                last.end_token() <= claimed,
                "tokens {claimed}..{} of bytes {}..{} are unclaimed at offset {boundary} but no error was reported",
                last.end_token(),
                last.start,
                last.end
            );
        }
    }

    /// Checks the decoder's accessors. `after_push`: a push (or a frame)
    /// may have come since the last `Ok(None)`.
    fn check_state(&self, decoder: &FrameDecoder<u32>, after_push: bool) {
        assert_eq!(decoder.limits(), self.limits);
        let buffered = decoder.buffered();
        let held = decoder.held_fds();
        assert!(buffered <= self.total());
        assert!(buffered <= HEADER_LEN + self.limits.max_body_len as usize + self.last_read_len);
        if self.failed.is_some() {
            assert_eq!(held, 0, "fds held after an error");
            assert_eq!(buffered, 0, "bytes held after an error");
            return;
        }
        let expected = self.avail() - if self.pending { HEADER_LEN } else { 0 };
        assert_eq!(buffered, expected, "buffered() is not the unreturned bytes");
        let slack = if after_push { self.last_read_len } else { 0 };
        if self.pending {
            assert!(buffered < self.pending_len() + slack);
        } else {
            assert!(buffered < HEADER_LEN + slack);
        }
        assert_eq!(held, (self.tokens_in - self.tokens_out) as usize);
        self.check_no_late_leftovers();
        assert_eq!(
            decoder.is_idle(),
            buffered == 0 && !self.pending && held == 0,
            "is_idle() disagrees with the state"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let limits = input.limits();
    let mut decoder = FrameDecoder::<u32>::new(limits);
    let mut model = Model::new(limits);
    let mut filler_left = FILLER_BUDGET;
    while !input.is_empty() {
        let ctl = input.byte();
        let len = usize::from(input.u16_le());
        if ctl == FILLER {
            let len = (16 * len).min(filler_left);
            filler_left -= len;
            let byte = input.byte();
            FILL.with_borrow_mut(|fill| {
                fill.clear();
                fill.resize(len, byte);
                model.push(&mut decoder, fill, 0);
            });
        } else {
            let nfds = if ctl & 1 == 1 { u32::from(ctl >> 1) } else { 0 };
            let bytes = input.take(len);
            model.push(&mut decoder, bytes, nfds);
        }
        model.drain(&mut decoder);
    }
});
