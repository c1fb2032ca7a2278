//! Random faults for the load mode (`harness::Chaos`): each API request
//! draws once from a seeded generator, so that a run can be repeated.
//! Throttling is SoftLayer's own rate-limit answer (HTTP 429 with a
//! `SoftLayer_Exception_WebService_RateLimitExceeded` body) and a server
//! error a gateway's 500, both before the fake acts; a lost answer and a
//! cut body come after it acted.

use harness::{Chaos, ChaosCounts};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What one request suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    Throttle,
    ServerError,
    LostAnswer,
    CutBody,
}

pub struct ChaosState {
    chaos: Chaos,
    rng: StdRng,
    pub counts: ChaosCounts,
    /// Arrival times of the last second's served requests (`rate_limit`).
    window: VecDeque<Instant>,
}

impl ChaosState {
    pub fn new(chaos: Chaos) -> Self {
        ChaosState {
            rng: StdRng::seed_from_u64(chaos.seed),
            chaos,
            counts: ChaosCounts::default(),
            window: VecDeque::new(),
        }
    }

    /// The fault for the next request, if it draws one; counted.
    pub fn draw(&mut self) -> Option<Draw> {
        self.counts.requests += 1;
        let now = Instant::now();
        while self
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
        {
            self.window.pop_front();
        }
        let over_rate = self
            .chaos
            .rate_limit
            .is_some_and(|r| self.window.len() as f64 >= r.max(0.0));
        // Every request draws, whatever the rate limit does, so that a seed
        // gives one sequence.
        let x: f64 = self.rng.random();
        let c = &self.chaos;
        let draw = if over_rate || x < c.throttle {
            Some(Draw::Throttle)
        } else {
            let mut edge = c.throttle;
            [
                (c.server_error, Draw::ServerError),
                (c.lost_answer, Draw::LostAnswer),
                (c.drop_mid_body, Draw::CutBody),
            ]
            .into_iter()
            .find_map(|(share, d)| {
                edge += share;
                (x < edge).then_some(d)
            })
        };
        match draw {
            Some(Draw::Throttle) => self.counts.throttled += 1,
            Some(Draw::ServerError) => self.counts.server_errors += 1,
            Some(Draw::LostAnswer) => self.counts.lost_answers += 1,
            Some(Draw::CutBody) => self.counts.dropped_mid_body += 1,
            None => {}
        }
        if draw != Some(Draw::Throttle) {
            self.window.push_back(now);
        }
        draw
    }
}

/// A `Chaos` from the control route's JSON (`POST /_fake/chaos`).
pub fn from_json(v: &serde_json::Value) -> Result<Chaos, String> {
    let share = |k: &str| -> Result<f64, String> {
        match v.get(k) {
            None | Some(serde_json::Value::Null) => Ok(0.0),
            Some(x) => x
                .as_f64()
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| format!("{k}: expected a share between 0 and 1, got {x}")),
        }
    };
    let chaos = Chaos {
        throttle: share("throttle")?,
        server_error: share("server_error")?,
        lost_answer: share("lost_answer")?,
        drop_mid_body: share("drop_mid_body")?,
        rate_limit: match v.get("rate_limit") {
            None | Some(serde_json::Value::Null) => None,
            Some(x) => Some(
                x.as_f64()
                    .filter(|f| *f > 0.0)
                    .ok_or_else(|| format!("rate_limit: expected requests per second, got {x}"))?,
            ),
        },
        seed: v.get("seed").and_then(|s| s.as_u64()).unwrap_or(0),
    };
    let total = chaos.throttle + chaos.server_error + chaos.lost_answer + chaos.drop_mid_body;
    if total > 1.0 + 1e-9 {
        return Err(format!("the shares add up to {total}, more than 1"));
    }
    Ok(chaos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_its_draws_and_the_shares_hold() {
        let c = Chaos {
            throttle: 0.1,
            ..Chaos::soak(7)
        };
        let run = |c: Chaos| {
            let mut s = ChaosState::new(c);
            let d: Vec<_> = (0..20_000).map(|_| s.draw()).collect();
            (d, s.counts)
        };
        let (a, counts) = run(c.clone());
        assert_eq!(a, run(c.clone()).0);
        assert_ne!(a, run(Chaos { seed: 8, ..c }).0);
        let near =
            |n: u64, share: f64| (n as f64 - share * 20_000.0).abs() < share * 5_000.0 + 10.0;
        assert!(near(counts.throttled, 0.1), "{counts:?}");
        assert!(near(counts.server_errors, 0.05), "{counts:?}");
        assert!(near(counts.lost_answers, 0.02), "{counts:?}");
        assert!(near(counts.dropped_mid_body, 0.01), "{counts:?}");
    }

    #[test]
    fn the_rate_limit_throttles_and_json_is_checked() {
        let mut s = ChaosState::new(Chaos {
            rate_limit: Some(10.0),
            ..Chaos::default()
        });
        let d: Vec<_> = (0..30).map(|_| s.draw()).collect();
        assert!(d[..10].iter().all(Option::is_none));
        assert!(d[10..].iter().all(|x| *x == Some(Draw::Throttle)));
        assert!(from_json(&serde_json::json!({"throttle": 2})).is_err());
        assert_eq!(
            from_json(&serde_json::json!({"throttle": 0.2, "seed": 4})).unwrap(),
            Chaos::throttling(0.2, 4)
        );
    }
}
