//! JSON to CBOR and back, for `sandvisor call`. CBOR byte strings have no
//! JSON form, so they are written `{"$hex": "0a0b..."}` both ways.

use serde_cbor::Value as Cbor;
use serde_json::Value as Json;

/// The key that marks a byte string.
pub const BYTES_KEY: &str = "$hex";

/// Converts JSON to CBOR; `{"$hex": "..."}` becomes a byte string.
pub fn to_cbor(json: &Json) -> Result<Cbor, String> {
    Ok(match json {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Cbor::Integer(i128::from(u))
            } else if let Some(i) = n.as_i64() {
                Cbor::Integer(i128::from(i))
            } else {
                Cbor::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(items) => Cbor::Array(items.iter().map(to_cbor).collect::<Result<_, _>>()?),
        Json::Object(map) => {
            if let (1, Some(Json::String(hex))) = (map.len(), map.get(BYTES_KEY)) {
                return decode_hex(hex).map(Cbor::Bytes);
            }
            Cbor::Map(
                map.iter()
                    .map(|(k, v)| Ok((Cbor::Text(k.clone()), to_cbor(v)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
    })
}

/// Converts CBOR to JSON; byte strings become `{"$hex": "..."}`, and map
/// keys that are not text are written as text.
pub fn to_json(cbor: &Cbor) -> Json {
    match cbor {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Integer(i) => {
            if let Ok(u) = u64::try_from(*i) {
                Json::from(u)
            } else if let Ok(s) = i64::try_from(*i) {
                Json::from(s)
            } else {
                Json::String(i.to_string())
            }
        }
        Cbor::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Cbor::Bytes(bytes) => {
            let mut map = serde_json::Map::new();
            map.insert(BYTES_KEY.to_owned(), Json::String(encode_hex(bytes)));
            Json::Object(map)
        }
        Cbor::Text(s) => Json::String(s.clone()),
        Cbor::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Cbor::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Cbor::Text(s) => s.clone(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Cbor::Tag(_, inner) => to_json(inner),
        _ => Json::Null,
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    if hex.len() % 2 != 0 {
        return Err(format!(
            "{BYTES_KEY} value has an odd number of digits: {hex:?}"
        ));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("{BYTES_KEY} value is not hexadecimal: {hex:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_round_trip_through_hex() {
        let json = json!({"payload": {"$hex": "00ff10"}, "n": -3, "list": [1.5, null, true]});
        let cbor = to_cbor(&json).unwrap();
        let Cbor::Map(map) = &cbor else {
            panic!("not a map")
        };
        assert_eq!(
            map.get(&Cbor::Text("payload".into())),
            Some(&Cbor::Bytes(vec![0, 255, 16]))
        );
        assert_eq!(to_json(&cbor), json);
    }

    #[test]
    fn bad_hex_is_refused_with_the_value() {
        assert_eq!(
            to_cbor(&json!({"$hex": "abc"})),
            Err("$hex value has an odd number of digits: \"abc\"".into())
        );
        assert!(to_cbor(&json!({"$hex": "zz"}))
            .unwrap_err()
            .contains("\"zz\""));
    }
}
