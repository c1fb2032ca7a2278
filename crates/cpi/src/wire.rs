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
                message: e.message().to_owned(),
                ok_to_retry: e.ok_to_retry(),
            }),
            log,
        }
    }
}
