//! The seeded draw behind every fake's chaos (`Chaos`): which fault, if
//! any, one request suffers, counted for the load report. Each fake (or
//! proxy) acts the fault out in its own cloud's shape: its throttling
//! answer, its server error, how it loses an answer.

use crate::environment::{Chaos, ChaosCounts};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The fault one request drew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drawn {
    /// The cloud's throttling answer, before it acts (also when over
    /// `rate_limit`).
    Throttle,
    /// A server error, before the cloud acts.
    ServerError,
    /// The cloud acts, then the answer is lost.
    LostAnswer,
    /// The cloud acts, then the answer is cut part-way.
    DropMidBody,
}

/// How a fake names what a request suffers, made from the draw: `Drawn`
/// itself, or a fake's own enum (Garden's throttling as a 503 or a reset).
pub trait FromDraw: Sized {
    /// Whether every request draws a fair coin too (after the fault), for
    /// a fake that acts a fault out in two ways.
    const COIN: bool = false;
    fn from_draw(drawn: Drawn, coin: bool) -> Self;
}

impl FromDraw for Drawn {
    fn from_draw(drawn: Drawn, _coin: bool) -> Self {
        drawn
    }
}

/// Chaos turned on: the seeded generator, the counts, and the arrival times
/// of the last second's requests (for `rate_limit`); draws are named `D`.
pub struct ChaosDraws<D = Drawn> {
    chaos: Chaos,
    rng: StdRng,
    pub counts: ChaosCounts,
    /// When the requests of the last second that were not throttled
    /// arrived.
    window: VecDeque<Instant>,
    names: std::marker::PhantomData<D>,
}

impl<D: FromDraw> ChaosDraws<D> {
    pub fn new(chaos: Chaos) -> Self {
        ChaosDraws {
            rng: StdRng::seed_from_u64(chaos.seed),
            chaos,
            counts: ChaosCounts::default(),
            window: VecDeque::new(),
            names: std::marker::PhantomData,
        }
    }

    /// The fault for the next request, if it draws one; counted.
    pub fn draw(&mut self) -> Option<D> {
        let (drawn, coin) = self.next(D::COIN);
        drawn.map(|d| D::from_draw(d, coin))
    }

    fn next(&mut self, with_coin: bool) -> (Option<Drawn>, bool) {
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
        let coin = with_coin && self.rng.random_bool(0.5);
        let c = &self.chaos;
        let draw = if over_rate || x < c.throttle {
            Some(Drawn::Throttle)
        } else {
            let mut edge = c.throttle;
            [
                (c.server_error, Drawn::ServerError),
                (c.lost_answer, Drawn::LostAnswer),
                (c.drop_mid_body, Drawn::DropMidBody),
            ]
            .into_iter()
            .find_map(|(share, d)| {
                edge += share;
                (x < edge).then_some(d)
            })
        };
        match draw {
            Some(Drawn::Throttle) => self.counts.throttled += 1,
            Some(Drawn::ServerError) => self.counts.server_errors += 1,
            Some(Drawn::LostAnswer) => self.counts.lost_answers += 1,
            Some(Drawn::DropMidBody) => self.counts.dropped_mid_body += 1,
            None => {}
        }
        if draw != Some(Drawn::Throttle) {
            self.window.push_back(now);
        }
        (draw, coin)
    }
}

/// A `Chaos` from a fake's control route's JSON (`POST /_fake/chaos`):
/// shares between 0 and 1 adding up to at most 1, `rate_limit` in requests
/// per second, `seed` an unsigned integer; a missing key is 0 (or no limit).
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

    fn run(chaos: Chaos, n: usize, with_coin: bool) -> (Vec<(Option<Drawn>, bool)>, ChaosCounts) {
        let mut s = ChaosDraws::<Drawn>::new(chaos);
        let draws = (0..n).map(|_| s.next(with_coin)).collect();
        (draws, s.counts)
    }

    #[test]
    fn a_seed_repeats_its_draws_and_the_shares_hold() {
        let c = Chaos {
            throttle: 0.1,
            ..Chaos::soak(7)
        };
        for with_coin in [false, true] {
            let (a, counts) = run(c.clone(), 20_000, with_coin);
            assert_eq!(
                a,
                run(c.clone(), 20_000, with_coin).0,
                "same seed, same draws"
            );
            assert_ne!(
                a,
                run(
                    Chaos {
                        seed: 8,
                        ..c.clone()
                    },
                    20_000,
                    with_coin
                )
                .0
            );
            assert_eq!(counts.requests, 20_000);
            let near = |n: u64, share: f64| {
                let want = share * 20_000.0;
                (n as f64 - want).abs() < want * 0.25 + 10.0
            };
            assert!(near(counts.throttled, 0.1), "{counts:?}");
            assert!(near(counts.server_errors, 0.05), "{counts:?}");
            assert!(near(counts.lost_answers, 0.02), "{counts:?}");
            assert!(near(counts.dropped_mid_body, 0.01), "{counts:?}");
            let coins = a.iter().filter(|(_, coin)| *coin).count();
            if with_coin {
                assert!((9_000..11_000).contains(&coins), "{coins} heads");
            } else {
                assert_eq!(coins, 0);
            }
        }
    }

    #[test]
    fn nothing_drawn_without_shares_and_the_rate_limit_throttles() {
        let (draws, counts) = run(Chaos::default(), 100, false);
        assert!(draws.iter().all(|(d, _)| d.is_none()));
        assert_eq!(counts.requests, 100);
        let mut s = ChaosDraws::<Drawn>::new(Chaos {
            rate_limit: Some(10.0),
            ..Chaos::default()
        });
        let draws: Vec<_> = (0..100).map(|_| s.draw()).collect();
        // All at once: the first ten pass, the rest are throttled.
        assert!(draws[..10].iter().all(Option::is_none), "{draws:?}");
        assert!(draws[10..].iter().all(|d| *d == Some(Drawn::Throttle)));
        assert_eq!(s.counts.throttled, 90);
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
        assert_eq!(
            from_json(&serde_json::json!({"throttle": 0.2, "seed": 4})).unwrap(),
            Chaos::throttling(0.2, 4)
        );
        assert!(from_json(&serde_json::json!({"throttle": 2})).is_err());
        assert!(from_json(&serde_json::json!({"throttle": 0.6, "server_error": 0.6})).is_err());
        assert!(from_json(&serde_json::json!({"rate_limit": -1})).is_err());
        assert!(from_json(&serde_json::json!({"seed": "x"})).is_err());
    }
}
