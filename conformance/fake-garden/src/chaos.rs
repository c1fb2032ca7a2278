//! Random faults for the load mode (`harness::Chaos`), in Garden's shapes:
//! each request draws once from the harness's seeded draw
//! (`harness::chaos`), so a run can be repeated. Throttling is Garden's 503
//! or a connection reset before the fake acts; a server error is a 500
//! before it acts; a lost answer and a drop mid-body come after it acted
//! (the container exists, the process ran).

use harness::chaos::{ChaosDraws, Drawn, FromDraw};

pub use harness::chaos::from_json;

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

/// Chaos turned on: the harness's draw, named as above.
pub type ChaosState = ChaosDraws<Draw>;

impl FromDraw for Draw {
    /// A coin drawn with every request makes half the throttled ones resets.
    const COIN: bool = true;
    fn from_draw(drawn: Drawn, reset: bool) -> Draw {
        match drawn {
            Drawn::Throttle if reset => Draw::Reset,
            Drawn::Throttle => Draw::Throttle,
            Drawn::ServerError => Draw::ServerError,
            Drawn::LostAnswer => Draw::LostAnswer,
            Drawn::DropMidBody => Draw::DropMidBody,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::Chaos;

    #[test]
    fn half_the_throttled_requests_are_resets() {
        let mut s = ChaosState::new(Chaos::throttling(1.0, 7));
        let draws: Vec<_> = (0..2_000).map(|_| s.draw()).collect();
        let resets = draws.iter().filter(|d| **d == Some(Draw::Reset)).count();
        let throttles = draws.iter().filter(|d| **d == Some(Draw::Throttle)).count();
        assert_eq!(resets + throttles, 2_000);
        assert!((800..1_200).contains(&resets), "{resets} resets");
        assert_eq!(s.counts.throttled, 2_000);
    }
}
