//! Content hashes that do not depend on the order of keys in a JSON object.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The SHA-256 of a JSON value, hex-encoded, with object keys taken in sorted order so that
/// the same content always has the same hash.
pub fn content_hash(value: &Value) -> String {
    let mut hasher = Sha256::new();
    feed(&mut hasher, value);
    hex::encode(hasher.finalize())
}

fn feed(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Null => hasher.update(b"n"),
        Value::Bool(b) => hasher.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            hasher.update(b"#");
            hasher.update(n.to_string().as_bytes());
            hasher.update(b";");
        }
        Value::String(s) => feed_str(hasher, s),
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                feed(hasher, item);
            }
            hasher.update(b"]");
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                feed_str(hasher, key);
                if let Some(v) = map.get(key) {
                    feed(hasher, v);
                }
            }
            hasher.update(b"}");
        }
    }
}

fn feed_str(hasher: &mut Sha256, s: &str) {
    hasher.update(b"\"");
    hasher.update((s.len() as u64).to_le_bytes());
    hasher.update(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_hash_but_content_does() {
        let a = json!({"name": "Ada", "tags": ["x", "y"], "n": 1});
        let b: Value =
            serde_json::from_str(r#"{"n": 1, "tags": ["x", "y"], "name": "Ada"}"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(
            content_hash(&a),
            content_hash(&json!({"name": "Ada", "tags": ["y", "x"], "n": 1}))
        );
        assert_ne!(
            content_hash(&json!({"a": "bc"})),
            content_hash(&json!({"ab": "c"}))
        );
    }
}
