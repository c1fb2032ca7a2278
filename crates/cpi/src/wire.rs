//! The JSON documents on stdin and stdout, as plain serde structs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One request, as the director or bosh-cli writes it on stdin.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Request {
    pub method: String,
    #[serde(default)]
    pub arguments: Vec<Value>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub context: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<u32>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    Ok(Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default())
}

/// One response on stdout. `log` is always a string and `error`, when set,
/// always carries all three fields: the director's schema demands both.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Response {
    pub result: Value,
    pub error: Option<WireError>,
    pub log: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct WireError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub ok_to_retry: bool,
}

impl Response {
    pub fn ok(result: Value, log: String) -> Self {
        Response {
            result,
            error: None,
            log,
        }
    }

    pub fn err(e: &crate::Error, log: String) -> Self {
        Response {
            result: Value::Null,
            error: Some(WireError {
                kind: e.kind().wire_type().to_owned(),
                message: bounded(e.message()),
                ok_to_retry: e.ok_to_retry(),
            }),
            log,
        }
    }
}

/// The longest error message sent: a message quoting a huge value (a
/// megabyte config string, a whole argument) keeps its head, which names
/// the key, and its tail, which says what was wrong.
pub const MAX_MESSAGE: usize = 2048;

pub fn bounded(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let head = floor(message, MAX_MESSAGE / 2);
    let tail = ceil(message, message.len() - MAX_MESSAGE / 4);
    format!(
        "{}… ({} bytes left out) …{}",
        &message[..head],
        tail - head,
        &message[tail..]
    )
}

fn floor(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_keep_head_and_tail() {
        let m = format!("cloud.key: 'é{}' is not absolute", "A".repeat(100_000));
        let b = bounded(&m);
        assert!(b.len() < MAX_MESSAGE + 64, "{}", b.len());
        assert!(b.starts_with("cloud.key: 'é"));
        assert!(b.ends_with("' is not absolute"));
        assert_eq!(bounded("short"), "short");
    }
}
