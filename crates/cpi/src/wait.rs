//! Waiting on the cloud: one poll-with-backoff-and-deadline helper, and one
//! retry helper for transient failures. No caller times a CPI call out, so
//! every wait here ends by itself.

use crate::{Error, Result};
use rand::Rng;
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// The default pause after a wait's first check. Most transitions against a
/// local cloud, and many on a fast real one, are over by the second check;
/// a 25 ms first pause was most of such a call's time.
pub const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// Exponential backoff with jitter, bounded by attempts and total time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The pause after a wait's first check (`wait_for` only): short, so
    /// that a resource that settles within milliseconds is seen at once.
    pub first: Duration,
    /// The first pause of the exponential schedule (of a retry; of a wait,
    /// after `first`).
    pub initial: Duration,
    /// No pause is longer than this.
    pub max: Duration,
    /// The whole wait ends after this long.
    pub deadline: Duration,
    /// And after this many attempts (`u32::MAX` for no count limit).
    pub max_attempts: u32,
}

impl Backoff {
    pub const fn new(initial: Duration, max: Duration, deadline: Duration) -> Self {
        Backoff {
            first: if FIRST_PAUSE.as_nanos() < initial.as_nanos() {
                FIRST_PAUSE
            } else {
                initial
            },
            initial,
            max,
            deadline,
            max_attempts: u32::MAX,
        }
    }

    pub const fn attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the pause after a wait's first check.
    pub const fn first(mut self, first: Duration) -> Self {
        self.first = first;
        self
    }

    /// For resources that settle in milliseconds to minutes (a port going
    /// active, a VM booting, a volume attaching): a second look after 1 ms,
    /// then 25 ms doubling to 5 s, for at most 10 minutes. Starting small
    /// costs a real cloud four or five extra reads and saves every fast
    /// transition most of its wait.
    pub const fn resource() -> Self {
        Self::new(
            Duration::from_millis(25),
            Duration::from_secs(5),
            Duration::from_secs(600),
        )
    }

    /// For API calls that failed transiently: 0.2 s doubling to 10 s,
    /// 8 attempts, at most 2 minutes.
    pub const fn api() -> Self {
        Self::new(
            Duration::from_millis(200),
            Duration::from_secs(10),
            Duration::from_secs(120),
        )
        .attempts(8)
    }

    /// The pause before attempt `n + 1` (n starts at 1): exponential, with
    /// "equal jitter" so that many CPIs retrying at once spread out.
    pub fn pause(&self, n: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(30)));
        let capped = exp.min(self.max);
        let half = capped / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }

    /// A wait's pause after its check number `check` (from 1): `first`,
    /// then the exponential schedule from `initial`.
    pub fn wait_pause(&self, check: u32) -> Duration {
        if check <= 1 {
            self.first
        } else {
            self.pause(check - 1)
        }
    }
}

/// Polls `check` until it answers `Some`, an error, or the deadline passes.
/// The first poll is immediate, the second after `backoff.first`, the rest
/// on the exponential schedule. Times out with a `CloudError` naming `what`.
pub async fn wait_for<T, F, Fut>(what: impl Display, backoff: Backoff, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if let Some(v) = check().await? {
            return Ok(v);
        }
        let pause = backoff.wait_pause(attempt);
        let elapsed = start.elapsed();
        if attempt >= backoff.max_attempts || elapsed + pause > backoff.deadline {
            return Err(Error::cloud(format!(
                "timed out after {:.1}s ({attempt} checks) waiting for {what}",
                elapsed.as_secs_f64()
            )));
        }
        tracing::debug!("waiting for {what}: check {attempt}, next in {pause:?}");
        crate::timing::sleep(pause).await;
    }
}

/// What to do with a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not transient: give up with this error.
    Fail,
    /// Transient: try again after the backoff's pause.
    Retry,
    /// Transient, and the cloud said when (`Retry-After`).
    RetryAfter(Duration),
    /// The cloud is throttling (or briefly refusing connections): try again
    /// after the backoff's pause until the deadline, without spending the
    /// attempt budget, which is for failures that may be real.
    Throttled,
    /// Throttled, with the pause the caller chose from the cloud's hint
    /// (`Retry-After`); like `Throttled`, bounded by the deadline alone.
    ThrottledFor(Duration),
}

/// Runs `attempt` until it succeeds, `classify` says the error is final, or
/// the backoff runs out; the last error is returned, its kind intact.
pub async fn retry<T, F, Fut>(
    what: impl Display,
    backoff: Backoff,
    classify: impl Fn(&Error) -> Verdict,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut n = 0u32;
    loop {
        n += 1;
        let err = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let verdict = classify(&err);
        let pause = match verdict {
            Verdict::Fail => return Err(err),
            Verdict::Retry | Verdict::Throttled => backoff.pause(n),
            Verdict::RetryAfter(d) | Verdict::ThrottledFor(d) => d.min(Duration::from_secs(60)),
        };
        let counted = !matches!(verdict, Verdict::Throttled | Verdict::ThrottledFor(_));
        if (counted && n >= backoff.max_attempts) || start.elapsed() + pause > backoff.deadline {
            return Err(err.context(format!("{what}: gave up after {n} attempts")));
        }
        tracing::info!(
            "{what}: attempt {n} failed ({}), retrying in {pause:?}",
            err.message()
        );
        crate::timing::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::cell::Cell;

    fn fast() -> Backoff {
        Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(4),
            Duration::from_secs(5),
        )
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn wait_for_returns_once_ready() {
        let n = Cell::new(0);
        let v = rt().block_on(wait_for("thing", fast(), || {
            n.set(n.get() + 1);
            let ready = n.get() == 3;
            async move { Ok(ready.then_some(7)) }
        }));
        assert_eq!(v.unwrap(), 7);
        assert_eq!(n.get(), 3);
    }

    #[test]
    fn wait_for_ends_at_its_bound() {
        let b = fast().attempts(4);
        let e = rt()
            .block_on(wait_for("volume vol-1 to attach", b, || async {
                Ok(None::<()>)
            }))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cloud);
        assert!(
            e.message().contains("volume vol-1 to attach"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("4 checks"), "{}", e.message());
    }

    #[test]
    fn retry_keeps_kind_and_stops_on_final_errors() {
        let n = Cell::new(0);
        let e = rt()
            .block_on(retry(
                "call",
                fast().attempts(3),
                |_| Verdict::Retry,
                || {
                    n.set(n.get() + 1);
                    async { Err::<(), _>(Error::vm_not_found("i-1")) }
                },
            ))
            .unwrap_err();
        assert_eq!(n.get(), 3);
        assert_eq!(e.kind(), ErrorKind::VmNotFound);

        n.set(0);
        let _ = rt().block_on(retry(
            "call",
            fast(),
            |_| Verdict::Fail,
            || {
                n.set(n.get() + 1);
                async { Err::<(), _>(Error::cloud("no")) }
            },
        ));
        assert_eq!(n.get(), 1);
    }

    #[test]
    fn throttling_spends_the_deadline_not_the_attempts() {
        // Eight throttled answers, then success: an attempt budget of 3 does
        // not end it, because throttling is bounded by time alone.
        let n = Cell::new(0);
        let v = rt().block_on(retry(
            "call",
            fast().attempts(3),
            |_| Verdict::Throttled,
            || {
                n.set(n.get() + 1);
                let seen = n.get();
                async move {
                    if seen > 8 {
                        Ok(seen)
                    } else {
                        Err(Error::cloud("throttled").retry(true))
                    }
                }
            },
        ));
        assert_eq!(v.unwrap(), 9);

        // And the deadline still ends it, with the error kept retriable.
        let b = Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(2),
            Duration::from_millis(30),
        )
        .attempts(1);
        let e = rt()
            .block_on(retry(
                "call",
                b,
                |_| Verdict::Throttled,
                || async { Err::<(), _>(Error::cloud("throttled").retry(true)) },
            ))
            .unwrap_err();
        assert!(e.ok_to_retry());
        assert!(e.message().contains("gave up"), "{}", e.message());
    }

    #[test]
    fn throttled_for_takes_the_callers_pause_and_spends_no_attempts() {
        let n = Cell::new(0);
        let v = rt().block_on(retry(
            "call",
            fast().attempts(1),
            |_| Verdict::ThrottledFor(Duration::from_millis(1)),
            || {
                n.set(n.get() + 1);
                let seen = n.get();
                async move {
                    if seen > 5 {
                        Ok(seen)
                    } else {
                        Err(Error::cloud("throttled").retry(true))
                    }
                }
            },
        ));
        assert_eq!(v.unwrap(), 6);
    }

    #[test]
    fn a_wait_looks_again_soon_then_backs_off() {
        let b = Backoff::resource();
        assert_eq!(b.wait_pause(1), FIRST_PAUSE);
        assert!(b.wait_pause(2) <= Duration::from_millis(25));
        assert!(b.wait_pause(2) >= Duration::from_millis(12));
        assert!(b.wait_pause(20) <= Duration::from_secs(5));
        assert!(b.wait_pause(20) >= Duration::from_millis(2500));
        // Never longer than the schedule's own first pause, nor zero unless asked.
        let slow = Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(4),
            Duration::from_secs(5),
        );
        assert_eq!(slow.wait_pause(1), Duration::from_millis(1));
        assert_eq!(
            Backoff::resource().first(Duration::ZERO).wait_pause(1),
            Duration::ZERO
        );
    }

    #[test]
    fn pauses_grow_and_stay_capped() {
        let b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(60),
        );
        assert!(b.pause(1) <= Duration::from_millis(100));
        assert!(b.pause(1) >= Duration::from_millis(50));
        assert!(b.pause(10) <= Duration::from_secs(1));
        assert!(b.pause(10) >= Duration::from_millis(500));
    }
}
