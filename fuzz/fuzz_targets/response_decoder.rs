//! Feeds arbitrary bytes to the client's reply path: `parse_response`, then,
//! as `Reply::decode` does, serde for each typed reply of the implemented
//! methods.
//!
//! Checks: no panic; an `ok` value is a slice of the body that is exactly
//! one CBOR item (`cbor::skip_item(ok, 0) == Ok(ok.len())`); an `err`
//! outcome survives `write_err` and `parse_response` unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sandvisor_actors::api::debug::{PingReply, StacksReply};
use sandvisor_actors::api::logging::LoggingState;
use sandvisor_actors::api::usage::{MemoryUsage, UsageFdReply};
use sandvisor_actors::api::Empty;
use sandvisor_actors::wire::cbor;
use sandvisor_actors::wire::envelope::{parse_response, write_err};

fuzz_target!(|data: &[u8]| {
    let Ok(response) = parse_response(data) else {
        return;
    };
    match response.outcome {
        Ok(ok) => {
            assert_eq!(
                cbor::skip_item(ok, 0),
                Ok(ok.len()),
                "ok value {ok:02x?} is not one complete cbor item"
            );
            let body = data.as_ptr_range();
            let value = ok.as_ptr_range();
            assert!(
                body.start <= value.start && value.end <= body.end,
                "ok value is not a slice of the body"
            );
            // What the client does with it; errors are fine, panics are not.
            let _ = serde_cbor::from_slice::<PingReply>(ok);
            let _ = serde_cbor::from_slice::<StacksReply>(ok);
            let _ = serde_cbor::from_slice::<LoggingState>(ok);
            let _ = serde_cbor::from_slice::<Empty>(ok);
            let _ = serde_cbor::from_slice::<MemoryUsage>(ok);
            let _ = serde_cbor::from_slice::<UsageFdReply>(ok);
        }
        Err(error) => {
            let mut body = Vec::new();
            write_err(&mut body, response.id, &error);
            match parse_response(&body) {
                Ok(again) => {
                    assert_eq!(again.id, response.id);
                    assert_eq!(again.outcome, Err(error));
                }
                Err(e) => panic!("re-encoded error {error:?} does not parse: {e}"),
            }
        }
    }
});
