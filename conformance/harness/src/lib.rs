//! The conformance harness: runs any CPI binary as the director and
//! bosh-cli do, against an [`Environment`] it can inspect.

pub mod environment;

pub use environment::*;
