//! Errors as the director understands them: a kind (the wire's error type),
//! a message, and whether a retry can help. The kind is data on the error, so
//! it survives every `context()` wrap on the way out.

use std::fmt;

/// The error types the BOSH director knows (`Bosh::Clouds::*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Bad request or bad config: `Bosh::Clouds::CpiError`.
    Cpi,
    NotImplemented,
    NotSupported,
    /// The IaaS refused or failed: `Bosh::Clouds::CloudError`.
    Cloud,
    VmNotFound,
    NetworkNotFound,
    VmCreationFailed,
    NoDiskSpace,
    DiskNotAttached,
    DiskNotFound,
    AttachDiskResponse,
    RetriableCloud,
}

impl ErrorKind {
    /// The `error.type` string on the wire.
    pub fn wire_type(self) -> &'static str {
        match self {
            ErrorKind::Cpi => "Bosh::Clouds::CpiError",
            ErrorKind::NotImplemented => "Bosh::Clouds::NotImplemented",
            ErrorKind::NotSupported => "Bosh::Clouds::NotSupported",
            ErrorKind::Cloud => "Bosh::Clouds::CloudError",
            ErrorKind::VmNotFound => "Bosh::Clouds::VMNotFound",
            ErrorKind::NetworkNotFound => "Bosh::Clouds::NetworkNotFound",
            ErrorKind::VmCreationFailed => "Bosh::Clouds::VMCreationFailed",
            ErrorKind::NoDiskSpace => "Bosh::Clouds::NoDiskSpace",
            ErrorKind::DiskNotAttached => "Bosh::Clouds::DiskNotAttached",
            ErrorKind::DiskNotFound => "Bosh::Clouds::DiskNotFound",
            ErrorKind::AttachDiskResponse => "Bosh::Clouds::AttachDiskResponseError",
            ErrorKind::RetriableCloud => "Bosh::Clouds::RetriableCloudError",
        }
    }

    /// Every kind, for tests and documentation.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Cpi,
        ErrorKind::NotImplemented,
        ErrorKind::NotSupported,
        ErrorKind::Cloud,
        ErrorKind::VmNotFound,
        ErrorKind::NetworkNotFound,
        ErrorKind::VmCreationFailed,
        ErrorKind::NoDiskSpace,
        ErrorKind::DiskNotAttached,
        ErrorKind::DiskNotFound,
        ErrorKind::AttachDiskResponse,
        ErrorKind::RetriableCloud,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_type())
    }
}

/// A CPI error: what the director will see, plus the cause for the log.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    ok_to_retry: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            ok_to_retry: false,
            source: None,
        }
    }

    /// Bad input or config (`CpiError`).
    pub fn cpi(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cpi, message)
    }
    /// The cloud refused or failed (`CloudError`).
    pub fn cloud(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Cloud, message)
    }
    pub fn not_implemented(method: &str) -> Self {
        Self::new(
            ErrorKind::NotImplemented,
            format!("method '{method}' is not implemented by this CPI"),
        )
    }
    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotSupported, message)
    }
    pub fn vm_not_found(vm: impl fmt::Display) -> Self {
        Self::new(ErrorKind::VmNotFound, format!("VM '{vm}' not found"))
    }
    pub fn disk_not_found(disk: impl fmt::Display) -> Self {
        Self::new(ErrorKind::DiskNotFound, format!("disk '{disk}' not found"))
    }
    pub fn disk_not_attached(vm: impl fmt::Display, disk: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::DiskNotAttached,
            format!("disk '{disk}' is not attached to VM '{vm}'"),
        )
    }
    /// `create_vm` failed; `ok_to_retry` says whether another try may work.
    pub fn vm_creation_failed(message: impl Into<String>, ok_to_retry: bool) -> Self {
        Self::new(ErrorKind::VmCreationFailed, message).retry(ok_to_retry)
    }

    /// Sets whether the director may retry.
    pub fn retry(mut self, ok_to_retry: bool) -> Self {
        self.ok_to_retry = ok_to_retry;
        self
    }

    /// Changes the kind, keeping message and cause (for example a failure
    /// part-way through `create_vm` becomes `VMCreationFailed`).
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Prefixes what was being done; the kind and retry flag are kept.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn ok_to_retry(&self) -> bool {
        self.ok_to_retry
    }
    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A cloud crate's own error enum says which wire kind each variant is; then
/// `?` turns it into an [`Error`] of that kind, with the enum kept as cause.
pub trait Classify: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;
    fn ok_to_retry(&self) -> bool {
        false
    }
}

impl<E: Classify> From<E> for Error {
    fn from(e: E) -> Self {
        Error {
            kind: e.kind(),
            message: e.to_string(),
            ok_to_retry: e.ok_to_retry(),
            source: Some(Box::new(e)),
        }
    }
}

/// `result.context("attach_disk")` on any result whose error becomes an [`Error`].
pub trait ResultExt<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum GardenError {
        #[error("container {0} not found")]
        NotFound(String),
    }
    impl Classify for GardenError {
        fn kind(&self) -> ErrorKind {
            ErrorKind::VmNotFound
        }
    }

    fn inner() -> Result<()> {
        Err(GardenError::NotFound("abc".into()))?
    }

    #[test]
    fn kind_survives_wrapping() {
        let e = inner()
            .context("looking up VM")
            .context("reboot_vm")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::VmNotFound);
        assert_eq!(
            e.message(),
            "reboot_vm: looking up VM: container abc not found"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn retry_flag_survives_wrapping() {
        let e = Error::vm_creation_failed("no capacity", true).context("create_vm");
        assert!(e.ok_to_retry());
        assert_eq!(e.kind().wire_type(), "Bosh::Clouds::VMCreationFailed");
    }
}
