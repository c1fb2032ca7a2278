//! Fault injection: rules matched against each request's route name,
//! installed in-process or through `POST /_fake/faults`.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a matching request suffers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer this HTTP status with a Garden error body.
    Status(u16),
    /// Sleep this many milliseconds, then answer normally.
    LatencyMs(u64),
    /// Close the connection without answering.
    Drop,
    /// Answer a typed Garden error (`{"Type": kind, …}`), which a client
    /// must not take for a transient failure.
    Error { status: u16, kind: String },
    /// Act (create, destroy, run…), then close without answering.
    LoseAnswer,
    /// Act, then write the head and part of the body (of a process: of its
    /// stream) and close.
    CutMidBody,
}

/// A rule: which routes, from which matching call, how many times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Route names (`create`, `run`, `stream_in`, … see the README); empty
    /// means every Garden route.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Fire first on the Nth matching call (1 = the next one).
    #[serde(default = "one")]
    pub nth: u32,
    /// How many matching calls fire from then on; absent = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    /// Count only calls made after a successful `create` (a fault "after the
    /// container exists").
    #[serde(default)]
    pub after_create: bool,
    /// Match only requests whose body contains this (a process's script).
    #[serde(default)]
    pub body_contains: Option<String>,
    pub action: FaultAction,
    #[serde(skip)]
    seen: u32,
    #[serde(skip)]
    fired: u32,
    #[serde(skip)]
    armed: bool,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    pub fn new(routes: &[&str], action: FaultAction) -> Self {
        FaultRule {
            routes: routes.iter().map(|s| s.to_string()).collect(),
            nth: 1,
            times: None,
            after_create: false,
            body_contains: None,
            action,
            seen: 0,
            fired: 0,
            armed: false,
        }
    }
    pub fn nth(mut self, n: u32) -> Self {
        self.nth = n.max(1);
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
    pub fn after_create(mut self) -> Self {
        self.after_create = true;
        self
    }
    pub fn body_contains(mut self, needle: &str) -> Self {
        self.body_contains = Some(needle.to_owned());
        self
    }
    fn spent(&self) -> bool {
        self.times.is_some_and(|t| self.fired >= t)
    }
}

#[derive(Default, Debug)]
pub struct Faults {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }
    pub fn clear(&mut self) {
        self.rules.clear();
    }
    /// A successful create arms the `after_create` rules.
    pub fn created(&mut self) {
        for r in &mut self.rules {
            r.armed = true;
        }
    }
    /// The action for this call to `route`, if a rule fires.
    pub fn check(&mut self, route: &str) -> Option<FaultAction> {
        self.check_request(route, &[])
    }

    /// The same, for a request with this body.
    pub fn check_request(&mut self, route: &str, body: &[u8]) -> Option<FaultAction> {
        let mut action = None;
        for r in &mut self.rules {
            if r.spent() || (r.after_create && !r.armed) {
                continue;
            }
            if !r.routes.is_empty() && !r.routes.iter().any(|x| x == route) {
                continue;
            }
            if let Some(needle) = &r.body_contains {
                let n = needle.as_bytes();
                if n.is_empty() || !body.windows(n.len()).any(|w| w == n) {
                    continue;
                }
            }
            r.seen += 1;
            if r.seen >= r.nth && action.is_none() {
                r.fired += 1;
                action = Some(r.action.clone());
            }
        }
        self.rules.retain(|r| !r.spent());
        action
    }
}

impl FaultAction {
    pub fn latency(d: Duration) -> Self {
        FaultAction::LatencyMs(d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_times_and_after_create() {
        let mut f = Faults::default();
        f.add(
            FaultRule::new(&["run"], FaultAction::Status(500))
                .nth(2)
                .times(2),
        );
        assert_eq!(f.check("info"), None);
        assert_eq!(f.check("run"), None);
        assert_eq!(f.check("run"), Some(FaultAction::Status(500)));
        assert_eq!(f.check("run"), Some(FaultAction::Status(500)));
        assert_eq!(f.check("run"), None, "spent after two");

        f.add(
            FaultRule::new(&["stream_in"], FaultAction::Drop)
                .after_create()
                .times(1),
        );
        assert_eq!(f.check("stream_in"), None, "not armed before a create");
        f.created();
        assert_eq!(f.check("stream_in"), Some(FaultAction::Drop));
        assert_eq!(f.check("stream_in"), None);

        f.add(FaultRule::new(&[], FaultAction::LatencyMs(5)));
        assert_eq!(f.check("ping"), Some(FaultAction::LatencyMs(5)));
        assert_eq!(f.check("create"), Some(FaultAction::LatencyMs(5)));
        f.clear();
        assert_eq!(f.check("ping"), None);
    }

    #[test]
    fn rules_read_from_the_control_route() {
        let r: FaultRule = serde_json::from_str(
            r#"{"routes": ["create"], "times": 2, "action": {"status": 503}}"#,
        )
        .unwrap();
        assert_eq!(
            (r.nth, r.times, r.action),
            (1, Some(2), FaultAction::Status(503))
        );
        let r: FaultRule = serde_json::from_str(r#"{"action": "drop"}"#).unwrap();
        assert_eq!(r.action, FaultAction::Drop);
    }
}
