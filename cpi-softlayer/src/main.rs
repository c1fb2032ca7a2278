//! cpi-softlayer: the BOSH external CPI for SoftLayer (IBM Cloud classic).

mod client;
mod cloud;
mod config;
mod disk;
mod error;
mod network;
mod pricing;
mod snapshot;
mod stemcell;
mod types;
mod vm;
mod vm_create;
mod volume;

fn main() {
    cpi::serve::<cloud::SoftLayer>()
}
