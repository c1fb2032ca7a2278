//! Random faults for the load mode (`harness::Chaos`): each request draws
//! once from a seeded generator, so a run can be repeated. Throttling is
//! OpenStack's 429 with `Retry-After` (and `overLimit.retryAfter` in the
//! body), before the fake acts; a server error is a 500 before it acts; a
//! lost answer (the connection closed, or a 500 in place of the answer) and
//! a drop mid-body come after it acted.

use harness::{Chaos, ChaosCounts};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What one request suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draw {
    /// 429 with `Retry-After`, before acting.
    Throttle,
    /// 500, before acting.
    ServerError,
    /// The fake acts, then closes the connection without an answer.
    LostDrop,
    /// The fake acts, then answers 500 in place of the real answer.
    Lost500,
    /// The fake acts, sends the head and half the body, then closes.
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
        // Every request draws both numbers, so that a seed gives the same
        // sequence whatever the rate limit does.
        let x: f64 = self.rng.random();
        let coin = self.rng.random_bool(0.5);
        let c = &self.chaos;
        let draw = if over_rate || x < c.throttle {
            Some(Draw::Throttle)
        } else {
            let lost = if coin { Draw::LostDrop } else { Draw::Lost500 };
            let mut edge = c.throttle;
            [
                (c.server_error, Draw::ServerError),
                (c.lost_answer, lost),
                (c.drop_mid_body, Draw::DropMidBody),
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
            Some(Draw::LostDrop) | Some(Draw::Lost500) => self.counts.lost_answers += 1,
            Some(Draw::DropMidBody) => self.counts.dropped_mid_body += 1,
            None => {}
        }
        if draw != Some(Draw::Throttle) {
            self.window.push_back(now);
        }
        draw
    }
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
        assert_ne!(a, other);
        let near = |n: u64, share: f64| {
            let want = share * 20_000.0;
            (n as f64 - want).abs() < want * 0.25 + 10.0
        };
        assert!(near(counts.throttled, 0.1), "{counts:?}");
        assert!(near(counts.server_errors, 0.05), "{counts:?}");
        assert!(near(counts.lost_answers, 0.02), "{counts:?}");
        assert!(near(counts.dropped_mid_body, 0.01), "{counts:?}");
        assert!(a.contains(&Some(Draw::LostDrop)) && a.contains(&Some(Draw::Lost500)));
    }

    #[test]
    fn the_rate_limit_throttles_above_it() {
        let (draws, counts) = run(
            Chaos {
                rate_limit: Some(10.0),
                ..Chaos::default()
            },
            100,
        );
        assert!(draws[..10].iter().all(Option::is_none), "{draws:?}");
        assert!(draws[10..].iter().all(|d| *d == Some(Draw::Throttle)));
        assert_eq!(counts.throttled, 90);
    }
}
