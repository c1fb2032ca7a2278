//! The BOSH external CPI protocol, and everything a cloud's binary needs
//! except the cloud: wire types, typed arguments, errors that keep their
//! kind, config loading, secret scrubbing, waiting, and the runner.
//!
//! A cloud implements [`Cloud`] and the capability traits, and its `main` is
//! `cpi::serve::<MyCloud>()`.

pub mod args;
pub mod cloud;
pub mod config;
pub mod context;
pub mod dispatch;
pub mod error;
pub mod fuzz;
#[cfg(feature = "http")]
pub mod http;
pub mod ids;
pub mod log;
pub mod reference;
pub mod secret;
pub mod serve;
pub mod timing;
pub mod wait;
pub mod wire;

pub use args::*;
pub use cloud::{Cloud, Disks, ManagedNetworks, Snapshots, Stemcells, Vms};
pub use context::CallContext;
pub use error::{Classify, Error, ErrorKind, Result, ResultExt};
pub use ids::*;
pub use secret::Secret;
pub use serve::{run, serve};
