//! Garden's failures, typed, and the CPI error kind each one is.

use cpi::{Classify, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum GardenError {
    #[error("garden: container '{handle}' not found")]
    ContainerNotFound { handle: String },
    #[error("garden: process '{0}' not found")]
    ProcessNotFound(String),
    /// An error body from the server (`{"Type", "Message", …}`).
    #[error("garden: {what}: HTTP {status}{}: {message}", if kind.is_empty() { String::new() } else { format!(" {kind}") })]
    Server {
        what: String,
        status: u16,
        kind: String,
        message: String,
    },
    /// Could not connect, or the connection broke before an answer.
    #[error("garden: {what}: {message}")]
    Transport { what: String, message: String },
    /// The server answered something that is not Garden's protocol.
    #[error("garden: {what}: unexpected answer: {message}")]
    Protocol { what: String, message: String },
}

impl GardenError {
    /// Worth another try: the connection broke, or the server said 5xx
    /// without naming a Garden error type.
    pub fn transient(&self) -> bool {
        match self {
            GardenError::Transport { .. } => true,
            GardenError::Server { status, kind, .. } => *status >= 500 && kind.is_empty(),
            _ => false,
        }
    }
}

impl GardenError {
    /// Garden (or what fronts it) is shedding load: a 503 without a Garden
    /// error type, or a refused connection. Nothing was done.
    pub fn throttled(&self) -> bool {
        match self {
            GardenError::Server { status, kind, .. } => *status == 503 && kind.is_empty(),
            GardenError::Transport { message, .. } => message.contains("refused"),
            _ => false,
        }
    }
}

impl Classify for GardenError {
    fn kind(&self) -> ErrorKind {
        match self {
            GardenError::ContainerNotFound { .. } => ErrorKind::VmNotFound,
            _ => ErrorKind::Cloud,
        }
    }
    fn ok_to_retry(&self) -> bool {
        self.transient()
    }
}
