//! What can go wrong talking to SoftLayer, and which wire kind each is.
//! The API's own error (`{"error", "code"}`) is kept whole so that callers
//! can branch on its code (`SoftLayer_Exception_ObjectNotFound`).

use cpi::{Classify, ErrorKind};

pub const OBJECT_NOT_FOUND: &str = "SoftLayer_Exception_ObjectNotFound";

#[derive(Debug, thiserror::Error)]
pub enum SlError {
    /// The API answered with its error body.
    #[error("{call}: {message} ({code}, HTTP {status})")]
    Api {
        call: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A non-2xx answer without SoftLayer's error body (a proxy, a gateway).
    #[error("{call}: HTTP {status}: {body}")]
    Http {
        call: String,
        status: u16,
        body: String,
    },
    /// No answer: refused, dropped, timed out.
    #[error("{call}: {message}")]
    Transport {
        call: String,
        message: String,
        connect: bool,
    },
    /// An answer that does not parse as the type expected.
    #[error("{call}: unexpected answer: {message}")]
    Decode { call: String, message: String },
}

impl SlError {
    pub fn code(&self) -> Option<&str> {
        match self {
            SlError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(OBJECT_NOT_FOUND)
    }

    pub fn message(&self) -> &str {
        match self {
            SlError::Api { message, .. }
            | SlError::Transport { message, .. }
            | SlError::Decode { message, .. } => message,
            SlError::Http { body, .. } => body,
        }
    }

    /// Whether trying again may work: the statuses and codes SoftLayer uses
    /// for overload and throttling, and failures to connect.
    pub fn is_transient(&self) -> bool {
        match self {
            SlError::Api { status, code, .. } => {
                matches!(status, 408 | 429 | 502 | 503 | 504 | 599)
                    || code.contains("RateLimitExceeded")
                    || code.contains("ServiceUnavailable")
            }
            SlError::Http { status, .. } => matches!(status, 408 | 429 | 502 | 503 | 504 | 599),
            SlError::Transport { .. } => true,
            SlError::Decode { .. } => false,
        }
    }

    /// Whether the request surely never reached the API (safe to resend
    /// even when it creates something).
    pub fn never_sent(&self) -> bool {
        matches!(self, SlError::Transport { connect: true, .. })
    }
}

impl Classify for SlError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Cloud
    }
    fn ok_to_retry(&self) -> bool {
        self.is_transient()
    }
}
