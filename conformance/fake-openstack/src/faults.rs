//! Fault injection: rules matched against each request, in order.

use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Answer this status without running the request (`Retry-After` set
    /// for 413/429 when given).
    Status { code: u16, retry_after: Option<u32> },
    /// Run the request, then answer this status instead: the cloud did the
    /// work but the caller cannot know it.
    StatusAfter { code: u16 },
    /// Close the connection without an answer (before acting).
    Drop,
    /// Run the request, then close the connection without an answer.
    DropAfter,
    /// Run the request, send the status, headers and half the body, then
    /// close the connection.
    CutBody,
    /// Answer normally after this delay.
    Latency(Duration),
}

#[derive(Clone, Debug)]
pub struct FaultRule {
    /// `GET`, `POST`…; None for any.
    pub method: Option<String>,
    /// A substring of the path (`/servers`); empty for any.
    pub path: String,
    /// Matching requests let through before the fault applies (N-1 for the Nth).
    pub skip: u32,
    /// How many matching requests get the fault; 0 for all until cleared.
    pub times: u32,
    pub action: FaultAction,
    pub(crate) seen: u32,
    pub(crate) applied: u32,
}

impl FaultRule {
    pub fn new(method: Option<&str>, path: &str, action: FaultAction) -> FaultRule {
        FaultRule {
            method: method.map(str::to_owned),
            path: path.to_owned(),
            skip: 0,
            times: 1,
            action,
            seen: 0,
            applied: 0,
        }
    }
    /// Applies from the `n`th matching request (1-based).
    pub fn nth(mut self, n: u32) -> Self {
        self.skip = n.saturating_sub(1);
        self
    }
    /// For `n` requests (0: until cleared).
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Whether this request gets the fault; counts it either way.
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Option<FaultAction> {
        if self
            .method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            || !path.contains(&self.path)
        {
            return None;
        }
        self.seen += 1;
        if self.seen <= self.skip || (self.times != 0 && self.applied >= self.times) {
            return None;
        }
        self.applied += 1;
        Some(self.action.clone())
    }

    pub(crate) fn spent(&self) -> bool {
        self.times != 0 && self.applied >= self.times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_and_times_pick_the_right_requests() {
        let mut rule = FaultRule::new(Some("POST"), "/servers", FaultAction::Drop)
            .nth(2)
            .times(2);
        let hits: Vec<bool> = (0..5)
            .map(|_| rule.take("POST", "/compute/v2.1/servers").is_some())
            .collect();
        assert_eq!(hits, [false, true, true, false, false]);
        assert!(rule.spent());
        assert!(
            rule.take("GET", "/compute/v2.1/servers").is_none(),
            "method must match"
        );
    }

    #[test]
    fn times_zero_lasts_until_cleared() {
        let mut rule =
            FaultRule::new(None, "", FaultAction::Latency(Duration::from_millis(1))).times(0);
        assert!((0..10).all(|_| rule.take("GET", "/x").is_some()));
        assert!(!rule.spent());
    }
}
