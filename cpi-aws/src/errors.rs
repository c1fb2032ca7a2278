//! AWS failures, by the code EC2 answers, and the wire kind each one is.
//! "Not found" on EC2 is HTTP 400 with a `*.NotFound` code, so the code is
//! what the CPI branches on; the call site decides what a NotFound means.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use cpi::wait::Verdict;
use cpi::{Classify, ErrorKind};

type SdkError<E> = aws_sdk_ec2::error::SdkError<E>;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// EC2 or EBS answered with an error code.
    #[error("{op}: {code}: {message}")]
    Api {
        op: &'static str,
        code: String,
        message: String,
    },
    /// No answer: connection refused or dropped, timeout, bad response.
    #[error("{op}: {message}")]
    Transport { op: &'static str, message: String },
    /// EC2 answered without something it always sends.
    #[error("{op}: the response has no {what}")]
    Incomplete {
        op: &'static str,
        what: &'static str,
    },
}

impl AwsError {
    pub fn from_sdk<E>(op: &'static str, e: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match &e {
            aws_sdk_ec2::error::SdkError::ServiceError(se) => {
                let err = se.err();
                AwsError::Api {
                    op,
                    code: err.code().unwrap_or("Unknown").to_owned(),
                    message: err.message().unwrap_or("").to_owned(),
                }
            }
            _ => AwsError::Transport {
                op,
                message: DisplayErrorContext(&e).to_string(),
            },
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code()
            .is_some_and(|c| c.ends_with(".NotFound") || c.ends_with(".Malformed"))
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code() == Some(code)
    }

    /// A failure another try may get past.
    pub fn is_transient(&self) -> bool {
        match self {
            AwsError::Transport { .. } => true,
            AwsError::Api { code, .. } => matches!(
                code.as_str(),
                "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "InternalError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "Unavailable"
                    | "InsufficientInstanceCapacity"
                    | "InsufficientAddressCapacity"
                    | "InsufficientVolumeCapacity"
                    | "InvalidIPAddress.InUse"
            ),
            AwsError::Incomplete { .. } => false,
        }
    }
}

impl Classify for AwsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Cloud
    }
    fn ok_to_retry(&self) -> bool {
        self.is_transient()
    }
}

/// `?` on an SDK call: `ec2.x().send().await.map_err(sdk("X"))?`.
pub fn sdk<E>(op: &'static str) -> impl FnOnce(SdkError<E>) -> cpi::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| AwsError::from_sdk(op, e).into()
}

/// The AWS error under a CPI error, if any.
pub fn aws_cause(e: &cpi::Error) -> Option<&AwsError> {
    std::error::Error::source(e).and_then(|s| s.downcast_ref::<AwsError>())
}

pub fn code_of(e: &cpi::Error) -> Option<&str> {
    aws_cause(e).and_then(AwsError::code)
}

pub fn is_not_found(e: &cpi::Error) -> bool {
    aws_cause(e).is_some_and(AwsError::is_not_found)
}

/// For `cpi::wait::retry`: throttling and dropped connections the SDK gave
/// up on, plus the given codes (eventual consistency: a just-created id not
/// yet visible, a volume still detaching).
pub fn retry_on(codes: &'static [&'static str]) -> impl Fn(&cpi::Error) -> Verdict {
    move |e| match aws_cause(e) {
        Some(a) if a.is_code("RequestLimitExceeded") || matches!(a, AwsError::Transport { .. }) => {
            Verdict::Retry
        }
        Some(a) if a.code().is_some_and(|c| codes.contains(&c)) => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_code_survive_context() {
        let e: cpi::Error = AwsError::Api {
            op: "DescribeInstances",
            code: "InvalidInstanceID.NotFound".into(),
            message: "The instance ID 'i-1' does not exist".into(),
        }
        .into();
        let e = e.context("has_vm");
        assert!(is_not_found(&e));
        assert_eq!(code_of(&e), Some("InvalidInstanceID.NotFound"));
        assert_eq!(
            retry_on(&["InvalidInstanceID.NotFound"])(&e),
            Verdict::Retry
        );
        assert_eq!(retry_on(&[])(&e), Verdict::Fail);
    }
}
