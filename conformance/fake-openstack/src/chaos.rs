//! Random faults for the load mode (`harness::Chaos`), in OpenStack's
//! shapes: each request draws once from the harness's seeded draw
//! (`harness::chaos`), so a run can be repeated. Throttling is OpenStack's
//! 429 with `Retry-After` (and `overLimit.retryAfter` in the body), before
//! the fake acts; a server error is a 500 before it acts; a lost answer
//! (the connection closed, or a 500 in place of the answer) and a drop
//! mid-body come after it acted.

use harness::chaos::{ChaosDraws, Drawn, FromDraw};

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

/// Chaos turned on: the harness's draw, named as above.
pub type ChaosState = ChaosDraws<Draw>;

impl FromDraw for Draw {
    /// A coin drawn with every request decides how a lost answer is lost.
    const COIN: bool = true;
    fn from_draw(drawn: Drawn, coin: bool) -> Draw {
        match drawn {
            Drawn::Throttle => Draw::Throttle,
            Drawn::ServerError => Draw::ServerError,
            Drawn::LostAnswer if coin => Draw::LostDrop,
            Drawn::LostAnswer => Draw::Lost500,
            Drawn::DropMidBody => Draw::DropMidBody,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::Chaos;

    #[test]
    fn lost_answers_are_lost_both_ways() {
        let mut s = ChaosState::new(Chaos {
            lost_answer: 1.0,
            ..Chaos::default()
        });
        let draws: Vec<_> = (0..2_000).map(|_| s.draw()).collect();
        let drops = draws.iter().filter(|d| **d == Some(Draw::LostDrop)).count();
        let fives = draws.iter().filter(|d| **d == Some(Draw::Lost500)).count();
        assert_eq!(drops + fives, 2_000);
        assert!((800..1_200).contains(&drops), "{drops} dropped");
        assert_eq!(s.counts.lost_answers, 2_000);
    }
}
