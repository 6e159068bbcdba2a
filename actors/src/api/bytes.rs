//! Strict byte strings: encoded as CBOR byte strings, and decoded only from
//! byte strings (a text string or an array of integers is a wrong shape).

use std::fmt;

use serde::de::{Error, Visitor};
use serde::{Deserializer, Serializer};

/// Serializes `bytes` as a CBOR byte string.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Deserializes a CBOR byte string, and nothing else.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Strict;

    impl<'de> Visitor<'de> for Strict {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }

    deserializer.deserialize_byte_buf(Strict)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        b: Vec<u8>,
    }

    #[test]
    fn only_byte_strings_decode() {
        let cbor = serde_cbor::to_vec(&Holder { b: vec![1, 2] }).unwrap();
        assert_eq!(
            serde_cbor::from_slice::<Holder>(&cbor).unwrap().b,
            vec![1, 2]
        );
        let text = serde_cbor::to_vec(&serde_cbor::Value::Map(
            [(
                serde_cbor::Value::Text("b".into()),
                serde_cbor::Value::Text("x".into()),
            )]
            .into_iter()
            .collect(),
        ))
        .unwrap();
        let err = serde_cbor::from_slice::<Holder>(&text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid type: string \"x\", expected a byte string"),
            "{err}"
        );
    }
}
