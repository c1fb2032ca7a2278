//! AWS failures, by the code EC2 answers, and the wire kind each one is.
//! "Not found" on EC2 is HTTP 400 with a `*.NotFound` code, so the code is
//! what the CPI branches on; the call site decides what a NotFound means.

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use cpi::wait::{self, Backoff, Verdict};
use cpi::{Classify, ErrorKind};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

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

/// EC2's and EBS's throttling codes.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "RequestThrottled"
    )
}

/// The cloud said it did not act: a throttled request.
pub fn is_throttled(e: &cpi::Error) -> bool {
    code_of(e).is_some_and(is_throttling_code)
}

/// What a failed request is worth another try: throttling waited out to
/// the deadline (`Verdict::Throttled`), server errors and dropped
/// connections retried within the attempt budget, the rest final.
pub fn request_verdict(e: &cpi::Error) -> Verdict {
    match aws_cause(e) {
        Some(a) if a.code().is_some_and(is_throttling_code) => Verdict::Throttled,
        Some(AwsError::Transport { .. }) => Verdict::Retry,
        Some(a)
            if a.code().is_some_and(|c| {
                matches!(
                    c,
                    "InternalError"
                        | "InternalFailure"
                        | "ServiceUnavailable"
                        | "Unavailable"
                        | "InternalServerException"
                )
            }) =>
        {
            Verdict::Retry
        }
        _ => Verdict::Fail,
    }
}

/// For `cpi::wait::retry` around a step whose requests already retry
/// (`send!`): only the given codes, which are the step's own to wait out
/// (eventual consistency: a just-created id not yet visible, a volume
/// still detaching). Everything else was retried once, inside, already.
pub fn retry_on(codes: &'static [&'static str]) -> impl Fn(&cpi::Error) -> Verdict {
    move |e| match code_of(e) {
        Some(c) if codes.contains(&c) => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

/// Attempts per request for failures that may be real (`aws.max_retries`
/// + 1); set once from the config when the clients are built.
static ATTEMPTS: AtomicU32 = AtomicU32::new(9);

pub fn set_max_retries(n: u32) {
    ATTEMPTS.store(n.saturating_add(1).max(1), Ordering::Relaxed);
}

/// The retry policy of one request. The SDK's own retries are off (see
/// `clients`): this is the only layer, so nothing multiplies. Throttling is
/// waited out with jittered backoff for up to 100 s (the director's call is
/// bounded by nothing else), then answered as a retriable error.
pub fn request_backoff() -> Backoff {
    Backoff::new(
        Duration::from_millis(200),
        Duration::from_secs(15),
        Duration::from_secs(100),
    )
    .attempts(ATTEMPTS.load(Ordering::Relaxed))
}

/// One idempotent request, retried by `request_verdict`. Use `send!`.
pub async fn call<T, E, F, Fut>(op: &'static str, mut f: F) -> cpi::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    wait::retry(op, request_backoff(), request_verdict, || {
        let fut = f();
        async move { fut.await.map_err(sdk(op)) }
    })
    .await
}

/// `send!("DescribeVolumes", ec2.describe_volumes().volume_ids(id)).await`:
/// an idempotent request, sent with `errors::call`'s retries. Creates that
/// are not idempotent go through `create::once` instead.
#[macro_export]
macro_rules! send {
    ($op:literal, $req:expr) => {{
        let req = $req;
        $crate::errors::call($op, move || req.clone().send())
    }};
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

    #[test]
    fn throttling_is_waited_out_and_retriable() {
        for code in ["RequestLimitExceeded", "Throttling", "ThrottlingException"] {
            let e: cpi::Error = AwsError::Api {
                op: "DescribeInstances",
                code: code.into(),
                message: "Request limit exceeded.".into(),
            }
            .into();
            assert_eq!(request_verdict(&e), Verdict::Throttled, "{code}");
            // The request layer waited it out already: not again.
            assert_eq!(retry_on(&["VolumeInUse"])(&e), Verdict::Fail);
            assert!(e.ok_to_retry(), "{code}");
        }
        let e: cpi::Error = AwsError::Api {
            op: "RunInstances",
            code: "InvalidParameterValue".into(),
            message: "no".into(),
        }
        .into();
        assert_eq!(request_verdict(&e), Verdict::Fail);
    }
}
