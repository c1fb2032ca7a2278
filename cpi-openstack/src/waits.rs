//! Waiting for a resource to leave its transitional state, bounded by
//! `state_timeout`, polling no slower than `wait_resource_poll_interval`.

use cpi::wait::{wait_for, Backoff};
use cpi::{Error, Result};
use std::future::Future;
use std::time::Duration;

/// One look at a resource: its status (and the cloud's reason when failed),
/// or gone.
pub enum Seen {
    Status {
        status: String,
        fault: Option<String>,
    },
    Gone,
}

/// What the wait expects to see.
pub enum Target<'a> {
    /// One of these statuses (lower-case).
    Status(&'a [&'a str]),
    /// Not there any more (404, or `deleted`).
    Gone,
}

pub fn backoff(poll_interval_s: u64, state_timeout: Duration) -> Backoff {
    let max = Duration::from_secs(poll_interval_s).max(Duration::from_millis(200));
    // Start small (see `Backoff::resource`): most transitions on a healthy
    // cloud finish within the first few hundred milliseconds.
    Backoff::new(Duration::from_millis(25), max, state_timeout)
}

/// Polls `look` until `target` is reached. An `error`/`failed`/`killed`
/// status ends the wait with the cloud's reason; so does vanishing while a
/// status is awaited.
pub async fn until<F, Fut>(
    what: &str,
    backoff: Backoff,
    target: Target<'_>,
    mut look: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Seen>>,
{
    wait_for(what, backoff, || {
        let seen = look();
        let target = &target;
        async move {
            match (seen.await?, target) {
                (Seen::Gone, Target::Gone) => Ok(Some(())),
                (Seen::Gone, Target::Status(_)) => {
                    Err(Error::cloud(format!("{what}: it disappeared")))
                }
                (Seen::Status { status, fault }, target) => {
                    let s = status.to_ascii_lowercase();
                    if matches!(target, Target::Gone)
                        && matches!(s.as_str(), "deleted" | "soft_deleted" | "terminated")
                    {
                        return Ok(Some(()));
                    }
                    if let Target::Status(want) = target {
                        if want.contains(&s.as_str()) {
                            return Ok(Some(()));
                        }
                    }
                    if matches!(
                        s.as_str(),
                        "error" | "failed" | "killed" | "error_deleting" | "error_extending"
                    ) {
                        let why = fault
                            .filter(|f| !f.is_empty())
                            .map(|f| format!(": {f}"))
                            .unwrap_or_default();
                        return Err(Error::cloud(format!("{what}: status is '{status}'{why}")));
                    }
                    tracing::debug!("{what}: status '{status}'");
                    Ok(None)
                }
            }
        }
    })
    .await
}
