//! Request and response bodies: `{"id", "method", "args"}` and
//! `{"id", "ok"}` / `{"id", "err": {"code", "message"}}`.
//!
//! Bodies are scanned with the bounded CBOR scanner first; only the `args`
//! (or `ok`) item is handed to serde, as a slice, so decoding never builds
//! an untyped tree of untrusted data.

use thiserror::Error;

use super::cbor::{self, CborError};
use super::frame::{encode_header, HEADER_LEN};
use super::status::{ErrorCode, RpcError};

/// A request body whose envelope is sound. `args` is the raw CBOR of the
/// arguments, `None` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRequest<'a> {
    /// The caller's request id (never 0).
    pub id: u64,
    /// The method name.
    pub method: &'a str,
    /// The arguments item, if present.
    pub args: Option<&'a [u8]>,
}

/// Why a body is not a valid request (or response).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not one well-formed CBOR item.
    #[error("body is not valid cbor: {0}")]
    NotCbor(#[from] CborError),
    /// Bytes follow the one item.
    #[error("{count} trailing bytes after the cbor item")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The item is not a map.
    #[error("body is a cbor item of major type {major}, not a map")]
    NotAMap {
        /// Its major type.
        major: u8,
    },
    /// A key is not a text string.
    #[error("body map key at byte {offset} is not a text string")]
    KeyNotText {
        /// Where the key starts.
        offset: usize,
    },
    /// An unexpected key.
    #[error("unknown body key {0:?}")]
    UnknownKey(String),
    /// A key given twice.
    #[error("body key {0:?} appears twice")]
    DuplicateKey(&'static str),
    /// A required key is missing.
    #[error("body has no {0:?} key")]
    MissingKey(&'static str),
    /// `id` is not an unsigned integer.
    #[error("\"id\" is not an unsigned integer")]
    IdNotUnsigned,
    /// `id` is 0, which is reserved for errors about unreadable requests.
    #[error("request id 0 is reserved")]
    IdReserved,
    /// `method` is not a text string.
    #[error("\"method\" is not a text string")]
    MethodNotText,
    /// A response has both or neither of `ok` and `err`.
    #[error("response must have exactly one of \"ok\" and \"err\"")]
    OkXorErr,
    /// A response's `err` is not `{"code", "message"}` with a known code.
    #[error("response \"err\" is malformed: {0}")]
    BadErr(String),
}

/// A body error together with the request id when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFault {
    /// The request id, or 0 when unknown.
    pub id: u64,
    /// What was wrong.
    pub error: BodyError,
}

/// Checks that `body` is exactly one CBOR item.
fn check_single_item(body: &[u8]) -> Result<(), BodyError> {
    let end = cbor::skip_item(body, 0)?;
    if end != body.len() {
        return Err(BodyError::TrailingBytes {
            count: body.len() - end,
        });
    }
    Ok(())
}

/// Iterates over the entries of the well-formed map at offset 0, calling
/// `entry(key, key_offset, value_start, value_end)`.
fn for_each_entry<'a>(
    body: &'a [u8],
    mut entry: impl FnMut(&'a str, usize, usize, usize) -> Result<(), BodyError>,
) -> Result<(), BodyError> {
    let head = cbor::read_head(body, 0)?;
    if head.major != 5 {
        return Err(BodyError::NotAMap { major: head.major });
    }
    let mut at = head.next;
    let mut remaining = head.arg;
    loop {
        if head.indefinite() {
            if body.get(at) == Some(&0xff) {
                return Ok(());
            }
        } else if remaining == 0 {
            return Ok(());
        } else {
            remaining -= 1;
        }
        let (key, value_start) =
            cbor::read_text(body, at)?.ok_or(BodyError::KeyNotText { offset: at })?;
        let value_end = cbor::skip_item(body, value_start)?;
        entry(key, at, value_start, value_end)?;
        at = value_end;
    }
}

/// Reads an unsigned integer item spanning exactly `item`.
fn read_uint(item: &[u8]) -> Option<u64> {
    let head = cbor::read_head(item, 0).ok()?;
    (head.major == 0 && head.next == item.len()).then_some(head.arg)
}

/// Parses a request body.
pub fn parse_request(body: &[u8]) -> Result<RawRequest<'_>, BodyFault> {
    check_single_item(body).map_err(|error| BodyFault { id: 0, error })?;
    let mut id_item: Option<&[u8]> = None;
    let mut method_item: Option<&[u8]> = None;
    let mut args: Option<&[u8]> = None;
    let scan = for_each_entry(body, |key, _, start, end| {
        let slot = match key {
            "id" => (&mut id_item, "id"),
            "method" => (&mut method_item, "method"),
            "args" => (&mut args, "args"),
            other => return Err(BodyError::UnknownKey(other.to_owned())),
        };
        if slot.0.is_some() {
            return Err(BodyError::DuplicateKey(slot.1));
        }
        *slot.0 = Some(&body[start..end]);
        Ok(())
    });
    // Report the id with the error whenever it could be read.
    let id = id_item.and_then(read_uint).unwrap_or(0);
    let fault = |error| BodyFault { id, error };
    scan.map_err(fault)?;
    let id_item = id_item.ok_or_else(|| fault(BodyError::MissingKey("id")))?;
    let id = read_uint(id_item).ok_or_else(|| fault(BodyError::IdNotUnsigned))?;
    if id == 0 {
        return Err(fault(BodyError::IdReserved));
    }
    let method_item = method_item.ok_or_else(|| fault(BodyError::MissingKey("method")))?;
    let method = match cbor::read_text(method_item, 0) {
        Ok(Some((text, end))) if end == method_item.len() => text,
        _ => return Err(fault(BodyError::MethodNotText)),
    };
    let args = args.filter(|a| *a != [0xf6]);
    Ok(RawRequest { id, method, args })
}

/// A buffer with room for a frame header, to which a body is appended.
pub fn frame_buffer(body_capacity: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN + body_capacity);
    buf.resize(HEADER_LEN, 0);
    buf
}

/// Writes the header of a frame built with [`frame_buffer`].
pub fn seal_frame(buf: &mut [u8], nfds: u8) {
    let len = (buf.len() - HEADER_LEN) as u32;
    buf[..HEADER_LEN].copy_from_slice(&encode_header(nfds, len));
}

/// Appends a request body with pre-encoded `args` (one CBOR item).
pub fn write_request(out: &mut Vec<u8>, id: u64, method: &str, args: &[u8]) {
    out.push(0xa3);
    cbor::write_text(out, "id");
    cbor::write_head(out, 0, id);
    cbor::write_text(out, "method");
    cbor::write_text(out, method);
    cbor::write_text(out, "args");
    out.extend_from_slice(args);
}

/// Appends the start of a success response body; the `ok` value (one CBOR
/// item) must follow.
pub fn write_ok_prefix(out: &mut Vec<u8>, id: u64) {
    out.push(0xa2);
    cbor::write_text(out, "id");
    cbor::write_head(out, 0, id);
    cbor::write_text(out, "ok");
}

/// Appends a success response body with the pre-encoded `ok` value.
pub fn write_ok(out: &mut Vec<u8>, id: u64, value: &[u8]) {
    write_ok_prefix(out, id);
    out.extend_from_slice(value);
}

/// Appends an error response body.
pub fn write_err(out: &mut Vec<u8>, id: u64, error: &RpcError) {
    out.push(0xa2);
    cbor::write_text(out, "id");
    cbor::write_head(out, 0, id);
    cbor::write_text(out, "err");
    out.push(0xa2);
    cbor::write_text(out, "code");
    cbor::write_text(out, error.code.as_str());
    cbor::write_text(out, "message");
    cbor::write_text(out, &error.message);
}

/// A complete error frame (no fds) for `id`.
pub fn error_frame(id: u64, error: &RpcError) -> Vec<u8> {
    let mut buf = frame_buffer(32 + error.message.len());
    write_err(&mut buf, id, error);
    seal_frame(&mut buf, 0);
    buf
}

/// A response body: the id and either the raw `ok` item or the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse<'a> {
    /// The id of the request answered (0 for connection-level errors).
    pub id: u64,
    /// The raw `ok` item, or the error.
    pub outcome: Result<&'a [u8], RpcError>,
}

/// Parses a response body.
pub fn parse_response(body: &[u8]) -> Result<RawResponse<'_>, BodyError> {
    check_single_item(body)?;
    let mut id_item = None;
    let mut ok = None;
    let mut err = None;
    for_each_entry(body, |key, _, start, end| {
        let slot = match key {
            "id" => (&mut id_item, "id"),
            "ok" => (&mut ok, "ok"),
            "err" => (&mut err, "err"),
            other => return Err(BodyError::UnknownKey(other.to_owned())),
        };
        if slot.0.is_some() {
            return Err(BodyError::DuplicateKey(slot.1));
        }
        *slot.0 = Some(&body[start..end]);
        Ok(())
    })?;
    let id =
        read_uint(id_item.ok_or(BodyError::MissingKey("id"))?).ok_or(BodyError::IdNotUnsigned)?;
    let outcome = match (ok, err) {
        (Some(value), None) => Ok(value),
        (None, Some(err)) => Err(parse_error(err)?),
        _ => return Err(BodyError::OkXorErr),
    };
    Ok(RawResponse { id, outcome })
}

fn parse_error(item: &[u8]) -> Result<RpcError, BodyError> {
    let mut code = None;
    let mut message = None;
    for_each_entry(item, |key, _, start, end| {
        let text = match cbor::read_text(item, start) {
            Ok(Some((text, text_end))) if text_end == end => text,
            _ => return Err(BodyError::BadErr(format!("{key:?} is not a text string"))),
        };
        match key {
            "code" => code = Some(text),
            "message" => message = Some(text),
            other => return Err(BodyError::BadErr(format!("unknown key {other:?}"))),
        }
        Ok(())
    })
    .map_err(|e| match e {
        BodyError::NotAMap { .. } => BodyError::BadErr("not a map".into()),
        other => other,
    })?;
    let code = code.ok_or_else(|| BodyError::BadErr("no \"code\"".into()))?;
    let code = ErrorCode::from_wire(code)
        .ok_or_else(|| BodyError::BadErr(format!("unknown code {code:?}")))?;
    let message = message.ok_or_else(|| BodyError::BadErr("no \"message\"".into()))?;
    Ok(RpcError::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: u64, method: &str, args: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_request(&mut out, id, method, args);
        out
    }

    #[test]
    fn parses_a_request() {
        let body = request(7, "debug.Ping", &[0xa0]);
        assert_eq!(
            parse_request(&body),
            Ok(RawRequest {
                id: 7,
                method: "debug.Ping",
                args: Some(&[0xa0][..])
            })
        );
        // null args count as absent.
        let body = request(8, "debug.Stacks", &[0xf6]);
        assert_eq!(parse_request(&body).unwrap().args, None);
    }

    #[test]
    fn reports_the_id_when_it_could_be_read() {
        let mut body = vec![0xa3];
        cbor::write_text(&mut body, "id");
        cbor::write_head(&mut body, 0, 42);
        cbor::write_text(&mut body, "method");
        cbor::write_head(&mut body, 0, 1);
        cbor::write_text(&mut body, "args");
        body.push(0xa0);
        assert_eq!(
            parse_request(&body),
            Err(BodyFault {
                id: 42,
                error: BodyError::MethodNotText
            })
        );
    }

    #[test]
    fn refuses_malformed_envelopes() {
        let cases: Vec<(Vec<u8>, BodyError)> = vec![
            (vec![0x01], BodyError::NotAMap { major: 0 }),
            (vec![0xa0, 0x00], BodyError::TrailingBytes { count: 1 }),
            (vec![0xa0], BodyError::MissingKey("id")),
            (vec![0xa1, 0x01, 0x02], BodyError::KeyNotText { offset: 1 }),
            (
                {
                    let mut b = vec![0xa1];
                    cbor::write_text(&mut b, "x");
                    b.push(0);
                    b
                },
                BodyError::UnknownKey("x".into()),
            ),
            (request(0, "debug.Ping", &[0xa0]), BodyError::IdReserved),
        ];
        for (body, error) in cases {
            assert_eq!(parse_request(&body).map_err(|f| f.error), Err(error));
        }
        assert!(matches!(
            parse_request(&[0xa1]),
            Err(BodyFault {
                id: 0,
                error: BodyError::NotCbor(_)
            })
        ));
    }

    #[test]
    fn responses_round_trip() {
        let mut ok = Vec::new();
        write_ok(&mut ok, 9, &[0x83, 1, 2, 3]);
        assert_eq!(
            parse_response(&ok),
            Ok(RawResponse {
                id: 9,
                outcome: Ok(&[0x83, 1, 2, 3][..])
            })
        );
        let error = RpcError::new(ErrorCode::NotFound, "method \"x\" does not exist");
        let mut err = Vec::new();
        write_err(&mut err, 3, &error);
        assert_eq!(
            parse_response(&err),
            Ok(RawResponse {
                id: 3,
                outcome: Err(error.clone())
            })
        );
        // The hand-written encoding is what serde would produce.
        #[derive(serde::Serialize)]
        struct Err<'a> {
            id: u64,
            err: &'a RpcError,
        }
        assert_eq!(
            err,
            serde_cbor::to_vec(&Err { id: 3, err: &error }).unwrap()
        );
    }

    #[test]
    fn error_frames_carry_a_header() {
        let frame = error_frame(0, &RpcError::new(ErrorCode::Protocol, "bad magic"));
        assert_eq!(&frame[..4], &[0x53, 0x56, 1, 0]);
        let len = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) as usize;
        assert_eq!(len, frame.len() - HEADER_LEN);
        assert!(parse_response(&frame[HEADER_LEN..])
            .unwrap()
            .outcome
            .is_err());
    }
}
