//! Random faults for the load mode (`harness::Chaos`): each API request
//! draws once from the harness's seeded draw (`harness::chaos`), so that a
//! run can be repeated. The server acts the draws out in SoftLayer's shapes:
//! throttling is SoftLayer's own rate-limit answer (HTTP 429 with a
//! `SoftLayer_Exception_WebService_RateLimitExceeded` body) and a server
//! error a gateway's 500, both before the fake acts; a lost answer and a
//! cut body (`Draw::DropMidBody`) come after it acted.

pub use harness::chaos::{from_json, ChaosDraws as ChaosState, Drawn as Draw};
