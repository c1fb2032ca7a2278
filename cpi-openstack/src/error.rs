//! What can go wrong talking to OpenStack, and which wire kind each is.

use cpi::{Classify, ErrorKind};

#[derive(Clone, Debug, thiserror::Error)]
pub enum OsError {
    /// The cloud answered with an error status; `message` is the cloud's
    /// own message, never the whole response.
    #[error("{what}: OpenStack answered {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    /// No answer: connection refused or dropped, timeout.
    #[error("{what}: no answer from OpenStack: {message}")]
    Transport {
        what: String,
        message: String,
        /// The connection was never made: the request did not reach the cloud.
        refused: bool,
    },
    /// An answer that does not parse as the documented body.
    #[error("{what}: unexpected answer from OpenStack: {message}")]
    Decode { what: String, message: String },
    /// Keystone refused the credentials, or the catalog lacks a service.
    #[error("authenticating with Keystone: {0}")]
    Auth(String),
    #[error("service catalog: {0}")]
    Catalog(String),
    /// Settings that cannot work (a TLS file that does not parse).
    #[error("{0}")]
    Setup(String),
}

impl Classify for OsError {
    fn kind(&self) -> ErrorKind {
        match self {
            OsError::Setup(_) => ErrorKind::Cpi,
            _ => ErrorKind::Cloud,
        }
    }
    fn ok_to_retry(&self) -> bool {
        match self {
            OsError::Transport { .. } => true,
            OsError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 413,
            _ => false,
        }
    }
}

/// The cloud's own message out of an error body: Nova and Cinder wrap it
/// (`{"itemNotFound": {"message": …}}`), Neutron says `NeutronError`,
/// Keystone `error`, Glance sometimes answers plain text or HTML.
pub fn cloud_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
            return m.to_owned();
        }
        if let Some(obj) = v.as_object() {
            for inner in obj.values() {
                if let Some(m) = inner.get("message").and_then(|m| m.as_str()) {
                    return m.to_owned();
                }
            }
        }
    }
    let text: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.trim();
    if text.is_empty() {
        "(no message)".to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_service_style() {
        assert_eq!(
            cloud_message(
                r#"{"itemNotFound": {"message": "Instance x could not be found.", "code": 404}}"#
            ),
            "Instance x could not be found."
        );
        assert_eq!(
            cloud_message(
                r#"{"NeutronError": {"type": "IpAddressInUse", "message": "IP in use", "detail": ""}}"#
            ),
            "IP in use"
        );
        assert_eq!(
            cloud_message(
                r#"{"error": {"code": 401, "message": "The request you have made requires authentication."}}"#
            ),
            "The request you have made requires authentication."
        );
        assert_eq!(
            cloud_message("<html> 413 Request Entity Too Large </html>"),
            "<html> 413 Request Entity Too Large </html>"
        );
    }
}
