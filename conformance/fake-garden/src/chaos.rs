//! Random faults for the load mode (`harness::Chaos`): each Garden request
//! draws once from a seeded generator, so a run can be repeated. Throttling
//! is Garden's 503 or a connection reset before the fake acts; a server
//! error is a 500 before it acts; a lost answer and a drop mid-body come
//! after it acted (the container exists, the process ran).

use harness::{Chaos, ChaosCounts};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What one request suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    /// 503 with Garden's untyped error body, before acting.
    Throttle,
    /// The connection is closed without an answer, before acting (what a
    /// client sees of a refused or reset connection under load).
    Reset,
    /// 500 with an untyped error body, before acting.
    ServerError,
    /// The fake acts, then closes the connection without an answer.
    LostAnswer,
    /// The fake acts, writes the head and part of the body (for a process:
    /// part of the stream), then closes the connection.
    DropMidBody,
}

pub struct ChaosState {
    chaos: Chaos,
    rng: StdRng,
    pub counts: ChaosCounts,
    /// When the requests of the last second arrived (for `rate_limit`).
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
        // Every request draws, so that a seed gives the same sequence
        // whatever the rate limit does.
        let x: f64 = self.rng.random();
        let reset = self.rng.random_bool(0.5);
        let c = &self.chaos;
        let draw = if over_rate || x < c.throttle {
            Some(if reset { Draw::Reset } else { Draw::Throttle })
        } else {
            let mut edge = c.throttle;
            [
                (c.server_error, Draw::ServerError),
                (c.lost_answer, Draw::LostAnswer),
                (c.drop_mid_body, Draw::DropMidBody),
            ]
            .into_iter()
            .find_map(|(share, d)| {
                edge += share;
                (x < edge).then_some(d)
            })
        };
        match draw {
            Some(Draw::Throttle) | Some(Draw::Reset) => self.counts.throttled += 1,
            Some(Draw::ServerError) => self.counts.server_errors += 1,
            Some(Draw::LostAnswer) => self.counts.lost_answers += 1,
            Some(Draw::DropMidBody) => self.counts.dropped_mid_body += 1,
            None => {}
        }
        if !matches!(draw, Some(Draw::Throttle) | Some(Draw::Reset)) {
            self.window.push_back(now);
        }
        draw
    }
}

/// Reads a `Chaos` from the control route's JSON (`/_fake/chaos`).
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
        seed: match v.get("seed") {
            None | Some(serde_json::Value::Null) => 0,
            Some(x) => x
                .as_u64()
                .ok_or_else(|| format!("seed: expected an unsigned integer, got {x}"))?,
        },
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

    fn run(chaos: Chaos, n: usize) -> (Vec<Option<Draw>>, ChaosCounts) {
        let mut s = ChaosState::new(chaos);
        let draws = (0..n).map(|_| s.draw()).collect();
        (draws, s.counts)
    }

    #[test]
    fn a_seed_repeats_its_draws_and_the_shares_hold() {
        let c = Chaos {
            throttle: 0.1,
            server_error: 0.05,
            lost_answer: 0.02,
            drop_mid_body: 0.01,
            rate_limit: None,
            seed: 7,
        };
        let (a, counts) = run(c.clone(), 20_000);
        let (b, _) = run(c.clone(), 20_000);
        assert_eq!(a, b, "same seed, same draws");
        let (other, _) = run(Chaos { seed: 8, ..c }, 20_000);
        assert_ne!(a, other, "another seed, other draws");
        assert_eq!(counts.requests, 20_000);
        let near = |n: u64, share: f64| {
            let want = share * 20_000.0;
            (n as f64 - want).abs() < want * 0.25 + 10.0
        };
        assert!(near(counts.throttled, 0.1), "{counts:?}");
        assert!(near(counts.server_errors, 0.05), "{counts:?}");
        assert!(near(counts.lost_answers, 0.02), "{counts:?}");
        assert!(near(counts.dropped_mid_body, 0.01), "{counts:?}");
        assert!(a.contains(&Some(Draw::Reset)) && a.contains(&Some(Draw::Throttle)));
    }

    #[test]
    fn nothing_drawn_without_shares_and_the_rate_limit_throttles() {
        let (draws, counts) = run(Chaos::default(), 100);
        assert!(draws.iter().all(Option::is_none));
        assert_eq!(counts.requests, 100);
        let (draws, counts) = run(
            Chaos {
                rate_limit: Some(10.0),
                ..Chaos::default()
            },
            100,
        );
        // All at once: the first ten pass, the rest are throttled.
        assert!(draws[..10].iter().all(Option::is_none), "{draws:?}");
        assert!(draws[10..].iter().all(Option::is_some), "{draws:?}");
        assert_eq!(counts.throttled, 90);
    }

    #[test]
    fn the_control_route_reads_and_checks_chaos() {
        let c =
            from_json(&serde_json::json!({"server_error": 0.05, "lost_answer": 0.02, "seed": 3}))
                .unwrap();
        assert_eq!(
            c,
            Chaos {
                drop_mid_body: 0.0,
                ..Chaos::soak(3)
            }
        );
        assert!(from_json(&serde_json::json!({"throttle": 2})).is_err());
        assert!(from_json(&serde_json::json!({"throttle": 0.6, "server_error": 0.6})).is_err());
        assert!(from_json(&serde_json::json!({"rate_limit": -1})).is_err());
    }
}
