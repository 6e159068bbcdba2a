//! A bounded CBOR scanner (RFC 8949): checks that bytes hold well-formed
//! items without building them, so that untrusted bodies are validated
//! (nesting depth, declared lengths) before serde sees them. It allocates
//! nothing and its work is linear in the input.

use thiserror::Error;

/// The deepest nesting of arrays, maps and tags accepted.
pub const MAX_DEPTH: u32 = 128;

/// Why bytes are not one acceptable CBOR item.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CborError {
    /// The input ended inside an item.
    #[error("cbor item truncated at byte {offset}")]
    Truncated {
        /// Where more bytes were needed.
        offset: usize,
    },
    /// A reserved or invalid initial byte.
    #[error("invalid cbor initial byte 0x{byte:02x} at byte {offset}")]
    InvalidInitialByte {
        /// The byte.
        byte: u8,
        /// Its position.
        offset: usize,
    },
    /// An indefinite-length string holds a chunk of another type.
    #[error("invalid chunk in indefinite-length string at byte {offset}")]
    InvalidChunk {
        /// Where the chunk starts.
        offset: usize,
    },
    /// A "break" outside an indefinite-length item.
    #[error("unexpected cbor break at byte {offset}")]
    UnexpectedBreak {
        /// Its position.
        offset: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("cbor nesting deeper than {limit} at byte {offset}")]
    TooDeep {
        /// The limit.
        limit: u32,
        /// Where the limit was crossed.
        offset: usize,
    },
    /// A declared length larger than the bytes that remain.
    #[error("cbor length {declared} at byte {offset} exceeds the {remaining} bytes that remain")]
    LengthOverrun {
        /// The declared length or element count.
        declared: u64,
        /// Where the item starts.
        offset: usize,
        /// Bytes remaining after the item head.
        remaining: usize,
    },
    /// A text string that is not UTF-8.
    #[error("cbor text at byte {offset} is not valid utf-8")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
    },
}

/// The head of a data item: major type, argument, and where its content
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Major type 0..=7.
    pub major: u8,
    /// The additional information (low five bits).
    pub info: u8,
    /// The argument (length, count, value); 0 for indefinite items.
    pub arg: u64,
    /// Offset of the byte after the head.
    pub next: usize,
}

impl Head {
    /// True for indefinite-length strings, arrays and maps.
    pub fn indefinite(&self) -> bool {
        self.info == 31
    }
}

/// Reads the head of the item at `pos`.
pub fn read_head(buf: &[u8], pos: usize) -> Result<Head, CborError> {
    let initial = *buf.get(pos).ok_or(CborError::Truncated { offset: pos })?;
    let major = initial >> 5;
    let info = initial & 0x1f;
    let width = match info {
        0..=23 => 0,
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        31 if matches!(major, 2..=5 | 7) => 0,
        _ => {
            return Err(CborError::InvalidInitialByte {
                byte: initial,
                offset: pos,
            })
        }
    };
    let start = pos + 1;
    let end = start + width;
    let bytes = buf
        .get(start..end)
        .ok_or(CborError::Truncated { offset: buf.len() })?;
    let arg = if width == 0 {
        if info == 31 {
            0
        } else {
            u64::from(info)
        }
    } else {
        bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    };
    Ok(Head {
        major,
        info,
        arg,
        next: end,
    })
}

/// Checks the one item starting at `pos` and returns the offset just past it.
pub fn skip_item(buf: &[u8], pos: usize) -> Result<usize, CborError> {
    skip_at_depth(buf, pos, 0)
}

/// Checks the item at `pos` and that its text strings are UTF-8 when `major`
/// is 3. Returns the offset past it.
fn skip_at_depth(buf: &[u8], pos: usize, depth: u32) -> Result<usize, CborError> {
    let head = read_head(buf, pos)?;
    match head.major {
        0 | 1 => Ok(head.next),
        2 | 3 => {
            if head.indefinite() {
                skip_chunks(buf, head.next, head.major)
            } else {
                skip_string(buf, pos, head)
            }
        }
        4..=6 => {
            if depth >= MAX_DEPTH {
                return Err(CborError::TooDeep {
                    limit: MAX_DEPTH,
                    offset: pos,
                });
            }
            let per_entry = if head.major == 5 { 2 } else { 1 };
            if head.major == 6 {
                return skip_at_depth(buf, head.next, depth + 1);
            }
            if head.indefinite() {
                let mut at = head.next;
                loop {
                    if buf.get(at) == Some(&0xff) {
                        return Ok(at + 1);
                    }
                    for _ in 0..per_entry {
                        at = skip_at_depth(buf, at, depth + 1)?;
                    }
                }
            }
            // Each element takes at least one byte, so a count larger than
            // what remains can be refused before looping over it.
            let remaining = buf.len().saturating_sub(head.next);
            let needed = head.arg.saturating_mul(per_entry);
            if needed > remaining as u64 {
                return Err(CborError::LengthOverrun {
                    declared: head.arg,
                    offset: pos,
                    remaining,
                });
            }
            let mut at = head.next;
            for _ in 0..needed {
                at = skip_at_depth(buf, at, depth + 1)?;
            }
            Ok(at)
        }
        _ => match head.info {
            31 => Err(CborError::UnexpectedBreak { offset: pos }),
            24 if head.arg < 32 => Err(CborError::InvalidInitialByte {
                byte: buf[pos],
                offset: pos,
            }),
            _ => Ok(head.next),
        },
    }
}

fn skip_string(buf: &[u8], pos: usize, head: Head) -> Result<usize, CborError> {
    let remaining = buf.len().saturating_sub(head.next);
    if head.arg > remaining as u64 {
        return Err(CborError::LengthOverrun {
            declared: head.arg,
            offset: pos,
            remaining,
        });
    }
    let end = head.next + head.arg as usize;
    if head.major == 3 && std::str::from_utf8(&buf[head.next..end]).is_err() {
        return Err(CborError::InvalidUtf8 { offset: pos });
    }
    Ok(end)
}

fn skip_chunks(buf: &[u8], mut at: usize, major: u8) -> Result<usize, CborError> {
    loop {
        match buf.get(at) {
            None => return Err(CborError::Truncated { offset: at }),
            Some(0xff) => return Ok(at + 1),
            Some(_) => {
                let head = read_head(buf, at)?;
                if head.major != major || head.indefinite() {
                    return Err(CborError::InvalidChunk { offset: at });
                }
                at = skip_string(buf, at, head)?;
            }
        }
    }
}

/// Reads a definite text string at `pos`, returning it and the offset past
/// it; `None` when the item there is not a definite text string.
pub fn read_text(buf: &[u8], pos: usize) -> Result<Option<(&str, usize)>, CborError> {
    let head = read_head(buf, pos)?;
    if head.major != 3 || head.indefinite() {
        return Ok(None);
    }
    let end = skip_string(buf, pos, head)?;
    match std::str::from_utf8(&buf[head.next..end]) {
        Ok(text) => Ok(Some((text, end))),
        Err(_) => Err(CborError::InvalidUtf8 { offset: pos }),
    }
}

/// Encodes a head of major type `major` with argument `arg`.
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Encodes a definite text string.
pub fn write_text(out: &mut Vec<u8>, text: &str) {
    write_head(out, 3, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut v = vec![0x81; depth];
        v.push(0x00);
        v
    }

    #[test]
    fn skips_well_formed_items() {
        let value = serde_cbor::Value::Map(
            [(
                serde_cbor::Value::Text("a".into()),
                serde_cbor::Value::Array(vec![
                    serde_cbor::Value::Integer(-5),
                    serde_cbor::Value::Float(1.5),
                    serde_cbor::Value::Bytes(vec![1, 2, 3]),
                    serde_cbor::Value::Null,
                ]),
            )]
            .into_iter()
            .collect(),
        );
        let bytes = serde_cbor::to_vec(&value).unwrap();
        assert_eq!(skip_item(&bytes, 0), Ok(bytes.len()));
    }

    #[test]
    fn accepts_indefinite_items() {
        // [_ "a", (_ h'01' h'02')] followed by a trailing 0.
        let bytes = [0x9f, 0x61, b'a', 0x5f, 0x41, 1, 0x41, 2, 0xff, 0xff, 0x00];
        assert_eq!(skip_item(&bytes, 0), Ok(10));
    }

    #[test]
    fn limits_depth_to_128() {
        let ok = nested_arrays(128);
        assert_eq!(skip_item(&ok, 0), Ok(ok.len()));
        let deep = nested_arrays(129);
        assert_eq!(
            skip_item(&deep, 0),
            Err(CborError::TooDeep {
                limit: 128,
                offset: 128
            })
        );
        let deep_tags = vec![0xc6; 10_000];
        assert!(matches!(
            skip_item(&deep_tags, 0),
            Err(CborError::TooDeep { .. })
        ));
    }

    #[test]
    fn refuses_lengths_beyond_the_input() {
        // A byte string claiming 2^64-1 bytes, and an array claiming 2^32 items.
        let huge_bytes = [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            skip_item(&huge_bytes, 0),
            Err(CborError::LengthOverrun { .. })
        ));
        let huge_array = [0x9b, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        assert!(matches!(
            skip_item(&huge_array, 0),
            Err(CborError::LengthOverrun { .. })
        ));
    }

    #[test]
    fn refuses_malformed_items() {
        assert_eq!(skip_item(&[], 0), Err(CborError::Truncated { offset: 0 }));
        assert!(matches!(
            skip_item(&[0x1c], 0),
            Err(CborError::InvalidInitialByte { byte: 0x1c, .. })
        ));
        assert_eq!(
            skip_item(&[0xff], 0),
            Err(CborError::UnexpectedBreak { offset: 0 })
        );
        assert_eq!(
            skip_item(&[0x62, 0xff, 0xfe], 0),
            Err(CborError::InvalidUtf8 { offset: 0 })
        );
        assert_eq!(
            skip_item(&[0x5f, 0x61, b'a', 0xff], 0),
            Err(CborError::InvalidChunk { offset: 1 })
        );
        assert!(matches!(
            skip_item(&[0x9f, 0x00], 0),
            Err(CborError::Truncated { .. })
        ));
        assert!(matches!(
            skip_item(&[0x1f], 0),
            Err(CborError::InvalidInitialByte { .. })
        ));
    }

    #[test]
    fn writes_heads_in_shortest_form() {
        for (arg, len) in [
            (0u64, 1usize),
            (23, 1),
            (24, 2),
            (255, 2),
            (256, 3),
            (65_536, 5),
            (1 << 32, 9),
        ] {
            let mut out = Vec::new();
            write_head(&mut out, 0, arg);
            assert_eq!(out.len(), len, "arg {arg}");
            assert_eq!(read_head(&out, 0).unwrap().arg, arg);
        }
    }
}
