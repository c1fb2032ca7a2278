//! A BOSH CPI for AWS EC2 on the official AWS SDK for Rust, a drop-in for
//! the Ruby `aws_cpi` job: same `cpi.json`, same `cloud_properties`.

#[macro_use]
pub mod errors;
pub mod clients;
pub mod cloud;
pub mod config;
pub mod create;
pub mod disk;
pub mod import;
pub mod instance;
pub mod instance_storage;
pub mod instance_types;
pub mod launch;
pub mod load_balancers;
pub mod network;
pub mod props;
pub mod reference;
pub mod snapshot;
pub mod spot;
pub mod stemcell;
pub mod vm;

pub use cloud::Aws;
