//! What can be wrong with a stemcell, each naming the file.

use cpi::{Classify, ErrorKind};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StemcellError {
    #[error("reading stemcell {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stemcell {path} has no {member} member")]
    Missing { path: PathBuf, member: &'static str },
    #[error("stemcell {path}: stemcell.MF is not valid: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("stemcell image {path} is corrupt or truncated: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl Classify for StemcellError {
    fn kind(&self) -> ErrorKind {
        // A bad stemcell is bad input from the caller, not a cloud failure.
        ErrorKind::Cpi
    }
}
