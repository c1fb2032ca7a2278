//! What can go wrong talking to SoftLayer, and which wire kind each is.
//! The API's own error (`{"error", "code"}`) is kept whole so that callers
//! can branch on its code (`SoftLayer_Exception_ObjectNotFound`).

use cpi::{Classify, ErrorKind};

pub const OBJECT_NOT_FOUND: &str = "SoftLayer_Exception_ObjectNotFound";
pub const RATE_LIMITED: &str = "SoftLayer_Exception_WebService_RateLimitExceeded";

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
    /// Nothing was sent: the HTTP client for the endpoint could not be
    /// built (for https, no CA certificates to trust).
    #[error("{call}: {message}")]
    Setup { call: String, message: String },
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
            | SlError::Decode { message, .. }
            | SlError::Setup { message, .. } => message,
            SlError::Http { body, .. } => body,
        }
    }

    /// Whether trying again may work: the statuses and codes SoftLayer uses
    /// for overload and throttling, a gateway's 5xx without SoftLayer's
    /// error body, and failures to connect or to read the answer.
    pub fn is_transient(&self) -> bool {
        match self {
            SlError::Api { status, code, .. } => {
                matches!(status, 408 | 429 | 502 | 503 | 504 | 599)
                    || code.contains("RateLimitExceeded")
                    || code.contains("ServiceUnavailable")
            }
            SlError::Http { status, .. } => {
                matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 599)
            }
            SlError::Transport { .. } => true,
            SlError::Decode { .. } | SlError::Setup { .. } => false,
        }
    }

    /// SoftLayer's rate limit: the request was refused before anything was
    /// done, so any call may be sent again once the backoff has passed.
    pub fn is_throttled(&self) -> bool {
        match self {
            SlError::Api { status, code, .. } => *status == 429 || code == RATE_LIMITED,
            SlError::Http { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// The request may have been acted on although no good answer came
    /// back (the answer was lost or cut, or a gateway failed): a create
    /// must look for what it made before it is sent again.
    pub fn ambiguous(&self) -> bool {
        match self {
            SlError::Transport { connect, .. } => !connect,
            SlError::Http { status, .. } => *status >= 500,
            SlError::Decode { .. } => true,
            SlError::Api { .. } | SlError::Setup { .. } => false,
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
        match self {
            SlError::Setup { .. } => ErrorKind::Cpi,
            _ => ErrorKind::Cloud,
        }
    }
    fn ok_to_retry(&self) -> bool {
        self.is_transient()
    }
}
