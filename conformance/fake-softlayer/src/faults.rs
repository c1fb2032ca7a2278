//! Fault injection: an error on the Nth call to a route or on the next N
//! calls, a dropped connection, added latency. Routes are `Service::method`
//! (`SoftLayer_Virtual_Guest::setUserMetadata`); `None` matches every route.

use std::time::Duration;

/// What a faulty call does instead of answering.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Answers this status with a SoftLayer error body.
    Error {
        status: u16,
        code: String,
        message: String,
    },
    /// Closes the connection without an answer, before the fake acts.
    Drop,
    /// The fake acts (the guest is made, the order placed), then closes the
    /// connection without an answer: the answer is lost.
    LoseAnswer,
    /// The fake acts and starts the answer (status, headers, half the
    /// body), then closes the connection.
    CutBody,
}

impl Action {
    /// A 503 the way SoftLayer's front end answers when overloaded.
    pub fn unavailable() -> Action {
        Action::Error {
            status: 503,
            code: "SoftLayer_Exception_WebService_ServiceUnavailable".into(),
            message: "Service Unavailable (injected)".into(),
        }
    }

    /// SoftLayer's rate limit: HTTP 429 with
    /// `SoftLayer_Exception_WebService_RateLimitExceeded`.
    pub fn rate_limited() -> Action {
        let e = crate::api::ApiError::rate_limited();
        Action::Error {
            status: e.status,
            code: e.code,
            message: e.message,
        }
    }

    /// A 500 `SoftLayer_Exception_Public`, what most refusals look like.
    pub fn public(message: &str) -> Action {
        Action::Error {
            status: 500,
            code: "SoftLayer_Exception_Public".into(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub route: Option<String>,
    /// Matching calls to let through before the fault starts.
    pub skip: u32,
    /// Matching calls the fault applies to (`u32::MAX`: until cleared).
    pub times: u32,
    pub action: Action,
}

#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub rules: Vec<Rule>,
    pub latency: Option<Duration>,
}

impl Faults {
    /// The fault for this call, if any; counts the call against the rules.
    pub fn take(&mut self, route: &str) -> Option<Action> {
        let mut hit = None;
        for rule in &mut self.rules {
            if rule.route.as_deref().is_some_and(|r| r != route) || rule.times == 0 {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if hit.is_none() {
                if rule.times != u32::MAX {
                    rule.times -= 1;
                }
                hit = Some(rule.action.clone());
            }
        }
        self.rules.retain(|r| r.times > 0);
        hit
    }

    pub fn clear(&mut self) {
        self.rules.clear();
        self.latency = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_call_and_next_n() {
        let mut f = Faults::default();
        f.rules.push(Rule {
            route: Some("A::x".into()),
            skip: 1,
            times: 1,
            action: Action::Drop,
        });
        assert_eq!(f.take("A::x"), None);
        assert_eq!(f.take("B::y"), None);
        assert_eq!(f.take("A::x"), Some(Action::Drop));
        assert_eq!(f.take("A::x"), None);
        f.rules.push(Rule {
            route: None,
            skip: 0,
            times: 2,
            action: Action::unavailable(),
        });
        assert!(f.take("B::y").is_some());
        assert!(f.take("A::x").is_some());
        assert!(f.take("A::x").is_none());
    }
}
