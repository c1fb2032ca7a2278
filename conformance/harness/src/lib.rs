//! The conformance harness: runs any CPI binary as the director and
//! bosh-cli do, against an [`Environment`] it can inspect, and the checks
//! that say whether the CPI behaves as its callers need.

pub mod bench;
pub mod chaos;
pub mod checks;
pub mod cpi;
pub mod environment;
pub mod forward_proxy;
pub mod load;
pub mod registry;
pub mod stemcell;
pub mod suite;

pub use environment::*;
