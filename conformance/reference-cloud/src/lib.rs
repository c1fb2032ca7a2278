//! The reference cloud: a tiny CPI (`cpi-reference`) whose cloud is a
//! directory of files, and its conformance [`Environment`](harness::Environment).
//! Its config's `break` list breaks one behaviour at a time, so that the
//! suite's tests can show every group of checks failing when it should.

pub mod cloud;
pub mod config;
pub mod environment;
pub mod store;

pub use cloud::Reference;
pub use config::Break;
pub use environment::{start_environment, ReferenceEnvironment};
