//! Encodes an arbitrary typed `Request` under an arbitrary nonzero id, then
//! decodes it the way the server does.
//!
//! Checks: `write_request` + `parse_request` + `Request::decode` gives back
//! the same id, method and request; the body framed with `frame_buffer` /
//! `seal_frame` (with 0..=3 fd tokens) and pushed through a `FrameDecoder`
//! in 1 to 3 arbitrary pieces comes out as exactly one frame, once its last
//! byte is in, with the body byte-identical and the tokens bound to it, and
//! leaves the decoder idle.

#![no_main]

use std::num::NonZeroU64;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sandvisor_actors::api::Request;
use sandvisor_actors::wire::envelope::{frame_buffer, parse_request, seal_frame, write_request};
use sandvisor_actors::wire::frame::HEADER_LEN;
use sandvisor_actors::wire::{FrameDecoder, FrameLimits};

#[derive(Debug, Arbitrary)]
struct Input {
    request: Request,
    id: NonZeroU64,
    /// Fd tokens sent with the frame, modulo 4.
    nfds: u8,
    /// Number of pieces the frame is pushed in, modulo 3, plus 1.
    pieces: u8,
    /// Where the pieces are cut, modulo the frame length plus 1.
    cuts: [u32; 2],
}

fuzz_target!(|input: Input| {
    let Input {
        request,
        id,
        nfds,
        pieces,
        cuts,
    } = input;
    let id = id.get();
    let args = request.encode_args();

    let mut body = Vec::new();
    write_request(&mut body, id, request.method(), &args);
    let raw = match parse_request(&body) {
        Ok(raw) => raw,
        Err(e) => panic!("encoded {request:?} does not parse: {e:?}\nbody: {body:02x?}"),
    };
    assert_eq!(raw.id, id);
    assert_eq!(raw.method, request.method());
    let decoded = match Request::decode(&raw, Vec::new()) {
        Ok(decoded) => decoded,
        Err(e) => panic!("encoded {request:?} does not decode: {e}\nbody: {body:02x?}"),
    };
    assert_eq!(decoded, request);

    let nfds = nfds % 4;
    let mut frame = frame_buffer(body.len());
    write_request(&mut frame, id, request.method(), &args);
    seal_frame(&mut frame, nfds);
    assert_eq!(frame[HEADER_LEN..], body[..]);

    let pieces = usize::from(pieces % 3) + 1;
    let mut bounds: Vec<usize> = cuts[..pieces - 1]
        .iter()
        .map(|&c| c as usize % (frame.len() + 1))
        .collect();
    bounds.sort_unstable();
    bounds.insert(0, 0);
    bounds.push(frame.len());

    let tokens: Vec<u32> = (0..u32::from(nfds)).collect();
    let mut fds = Some(tokens.clone());
    let mut decoder = FrameDecoder::<u32>::new(FrameLimits::default());
    let mut frames = Vec::new();
    for piece in bounds.windows(2) {
        let bytes = &frame[piece[0]..piece[1]];
        // The fds travel with the read that holds the frame's first byte.
        let with = if bytes.is_empty() {
            Vec::new()
        } else {
            fds.take().unwrap_or_default()
        };
        if let Err(e) = decoder.push(bytes, with) {
            panic!("push of bytes {}..{} failed: {e}", piece[0], piece[1]);
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => panic!("frame split at {bounds:?} failed: {e}"),
            }
        }
        if piece[1] < frame.len() {
            assert!(frames.is_empty(), "frame came out before its last byte");
        }
    }
    assert_eq!(frames.len(), 1, "split at {bounds:?}");
    assert_eq!(frames[0].body, body, "split at {bounds:?}");
    assert_eq!(frames[0].fds, tokens);
    assert!(decoder.is_idle());
});
