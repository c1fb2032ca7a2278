//! Secrets never reach a log: a `Secret` type whose Debug and Display print
//! `<redacted>`, and a process-wide list of secret strings that the log
//! writer scrubs from every line, filled from the config, the request (the
//! director's `env`, agent settings) and anything a cloud learns at run time
//! (tokens, CHAP passwords).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::sync::{Mutex, OnceLock};

pub const REDACTED: &str = "<redacted>";

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Adds a string to scrub from every log line. Very short strings are
/// ignored: scrubbing "a" would make the log unreadable and hide nothing.
pub fn register(secret: &str) {
    if secret.len() < 3 {
        return;
    }
    let mut list = registry().lock().unwrap_or_else(|e| e.into_inner());
    if !list.iter().any(|s| s == secret) {
        list.push(secret.to_owned());
        // Longest first, so that a secret containing another is scrubbed whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Forgets every registered secret: for fuzzers, which run thousands of
/// calls in one process, each registering the secrets of its own input.
#[doc(hidden)]
pub fn forget_all() {
    registry().lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Whether a JSON key names a secret value.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', '_'], "");
    const WORDS: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "privatekey",
        "credential",
        "chap",
        "accesskey",
        "authorization",
    ];
    WORDS.iter().any(|w| k.contains(w))
}

/// Walks a JSON document and registers every string under a secret-looking
/// key, and every password in a URL's user info (`https://u:p@host`).
pub fn register_from_json(value: &Value) {
    walk(value, false);
}

fn walk(value: &Value, secret: bool) {
    match value {
        Value::String(s) => {
            if secret {
                register(s);
            }
            register_url_password(s);
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, secret)),
        Value::Object(map) => {
            for (k, v) in map {
                walk(v, secret || is_secret_key(k));
            }
        }
        _ => {}
    }
}

fn register_url_password(s: &str) {
    if let Some(rest) = s.split_once("://").map(|(_, r)| r) {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _host)) = authority.rsplit_once('@') {
            if let Some((_user, pass)) = userinfo.split_once(':') {
                register(pass);
            }
        }
    }
}

/// `text` with every registered secret replaced by `<redacted>`.
pub fn redact(text: &str) -> String {
    let list = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_owned();
    for s in list.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// A secret config value. Deserialising it registers it for scrubbing.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        let s = s.into();
        register(&s);
        Secret(s)
    }
    /// The value itself, for the one place that sends it to the cloud.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret::new(String::deserialize(d)?))
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrubs_registered_and_nested_secrets() {
        register_from_json(&json!({
            "agent": {"mbus": "https://mbus:mbus-pass-123@0.0.0.0:6868",
                      "blobstore": {"options": {"password": "blob-pass-456", "user": "agent"}}},
            "env": {"bosh": {"password": "$6$hashed-pw"}},
            "SoftLayer": {"ApiKey": "sl-api-key-789"},
            "key_name": "bosh"
        }));
        let line = "mbus-pass-123 blob-pass-456 $6$hashed-pw sl-api-key-789 agent bosh";
        assert_eq!(
            redact(line),
            "<redacted> <redacted> <redacted> <redacted> agent bosh"
        );
    }

    #[test]
    fn secret_prints_redacted() {
        let s: Secret = serde_json::from_value(json!("hunter2-secret")).unwrap();
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(redact("pw=hunter2-secret"), "pw=<redacted>");
    }
}
