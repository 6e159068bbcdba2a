//! Feeds arbitrary bytes to the server's request path: `parse_request`
//! (envelope) then `Request::decode` (typed arguments, no fds).
//!
//! Checks: no panic; a sound envelope has a nonzero id, never null `args`,
//! and `args` that are exactly one CBOR item; a request that decodes
//! re-encodes (`write_request` with `Request::encode_args`) into a body that
//! parses with the same id and method and decodes to an equal request, and
//! encoding that request again yields the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sandvisor_actors::api::Request;
use sandvisor_actors::wire::cbor;
use sandvisor_actors::wire::envelope::{parse_request, write_request};

fn encode(id: u64, request: &Request) -> Vec<u8> {
    let mut body = Vec::new();
    write_request(&mut body, id, request.method(), &request.encode_args());
    body
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = parse_request(data) else {
        return;
    };
    assert_ne!(raw.id, 0, "parse_request accepted the reserved id 0");
    if let Some(args) = raw.args {
        assert_ne!(args, [0xf6], "null args must read as absent");
        assert_eq!(cbor::skip_item(args, 0), Ok(args.len()));
    }
    let Ok(request) = Request::decode(&raw, Vec::new()) else {
        return;
    };
    assert_eq!(request.method(), raw.method);

    let body = encode(raw.id, &request);
    let reparsed = match parse_request(&body) {
        Ok(r) => r,
        Err(e) => panic!("re-encoded {request:?} does not parse: {e:?}\nbody: {body:02x?}"),
    };
    assert_eq!(reparsed.id, raw.id);
    assert_eq!(reparsed.method, raw.method);
    let decoded = match Request::decode(&reparsed, Vec::new()) {
        Ok(r) => r,
        Err(e) => panic!("re-encoded {request:?} does not decode: {e}\nbody: {body:02x?}"),
    };
    assert_eq!(decoded, request, "round trip changed the request");
    assert_eq!(encode(raw.id, &decoded), body, "encoding is not stable");
});
