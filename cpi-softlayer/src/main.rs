//! cpi-softlayer: the BOSH external CPI for SoftLayer (IBM Cloud classic).

mod client;
mod cloud;
mod config;
#[cfg(test)]
mod decode_fuzz;
mod disk;
mod error;
mod image_source;
mod network;
mod os_reload;
#[cfg(test)]
mod parity;
mod pricing;
mod props;
mod snapshot;
mod ssh_key;
mod stemcell;
mod stemcell_import;
mod swift;
mod types;
mod vm;
mod vm_create;
mod volume;

fn main() {
    cpi::serve::<cloud::SoftLayer>()
}
