//! Payloads: JSON with a schema version and a message id, checked on the way in.
//!
//! Every message is an [`Envelope`]: `{"schema": 1, "id": "...", "at_ms": ..., ...body}`.
//! Receivers reject oversized payloads, malformed JSON, unknown schema versions and wrong
//! types with a reason that names the topic, and never act on them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The payload schema this build writes and reads.
pub const SCHEMA: u32 = 1;
/// Largest payload accepted.
pub const MAX_PAYLOAD: usize = 256 * 1024;

/// A message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Payload schema version.
    pub schema: u32,
    /// Stable message id: receivers apply each id once.
    pub id: String,
    /// When it was produced (unix ms).
    pub at_ms: i64,
    /// Where the receiver confirms it has applied the message, when the sender waits for
    /// that (see [`outbox`](super::outbox)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
    /// The content.
    #[serde(flatten)]
    pub body: T,
}

impl<T: Serialize> Envelope<T> {
    /// Wraps a body. The body's fields sit beside the envelope's, so a body must not have a
    /// field named like one of them (debug builds check).
    pub fn new(id: impl Into<String>, at_ms: i64, body: T) -> Self {
        debug_assert!(
            reserved_free(&body),
            "a bus message body has a field named like an envelope field ({RESERVED:?})"
        );
        Envelope {
            schema: SCHEMA,
            id: id.into(),
            at_ms,
            ack: None,
            body,
        }
    }

    /// Asks the receiver to confirm on `topic` once it has applied the message.
    pub fn with_ack(mut self, topic: impl Into<String>) -> Self {
        self.ack = Some(topic.into());
        self
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The envelope's own fields.
const RESERVED: [&str; 4] = ["schema", "id", "at_ms", "ack"];

fn reserved_free<T: Serialize>(body: &T) -> bool {
    match serde_json::to_value(body) {
        Ok(serde_json::Value::Object(fields)) => !RESERVED.iter().any(|k| fields.contains_key(*k)),
        _ => true,
    }
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message on {topic} refused: {reason}")]
pub struct PayloadError {
    /// Where it came in.
    pub topic: String,
    /// What was wrong.
    pub reason: String,
}

/// Checks and parses a payload.
pub fn parse<T: DeserializeOwned>(topic: &str, bytes: &[u8]) -> Result<Envelope<T>, PayloadError> {
    let refuse = |reason: String| PayloadError {
        topic: topic.to_owned(),
        reason,
    };
    if bytes.len() > MAX_PAYLOAD {
        return Err(refuse(format!(
            "{} bytes, over the {MAX_PAYLOAD}-byte limit",
            bytes.len()
        )));
    }
    #[derive(Deserialize)]
    struct Head {
        schema: Option<serde_json::Value>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| refuse(format!("not JSON: {e}")))?;
    match head.schema {
        None => return Err(refuse("no `schema` field".into())),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(SCHEMA)) => {}
        Some(other) => {
            return Err(refuse(format!(
                "schema {other} is not one this daemon reads (it reads {SCHEMA})"
            )));
        }
    }
    serde_json::from_slice(bytes).map_err(|e| refuse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Body {
        plate: String,
        kg: f64,
    }

    #[test]
    fn round_trip() {
        let e = Envelope::new(
            "m-1",
            5,
            Body {
                plate: "粤B12345".into(),
                kg: 1.5,
            },
        );
        let bytes = e.to_bytes();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"schema":1,"id":"m-1","at_ms":5,"plate":"粤B12345","kg":1.5}"#
        );
        assert_eq!(parse::<Body>("t", &bytes).unwrap(), e);
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"{not json",
                "message on t refused: not JSON: key must be a string at line 1 column 2",
            ),
            (br#"{"id":"x"}"#, "message on t refused: no `schema` field"),
            (
                br#"{"schema":9,"id":"x","at_ms":1}"#,
                "message on t refused: schema 9 is not one this daemon reads (it reads 1)",
            ),
            (
                br#"{"schema":1,"id":"x","at_ms":1,"plate":"a","kg":"heavy"}"#,
                "message on t refused: invalid type: string \"heavy\", expected f64 at line 1 column 56",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse::<Body>("t", input).unwrap_err().to_string(),
                *expected
            );
        }
        let big = vec![b' '; MAX_PAYLOAD + 1];
        assert!(
            parse::<Body>("t", &big)
                .unwrap_err()
                .reason
                .contains("over the 262144-byte limit")
        );
    }
}
