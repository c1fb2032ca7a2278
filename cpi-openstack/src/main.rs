//! The `cpi-openstack` binary: everything but the cloud is the runner's.

mod cloud;
mod config;
#[cfg(test)]
mod decode_tests;
mod disk;
mod error;
mod image_stream;
mod keystone;
mod lbaas;
mod network;
mod nova;
#[cfg(test)]
mod parity;
mod server_group;
mod session;
mod snapshot;
mod stemcell;
mod token_cache;
mod types;
mod vm;
mod vm_create;
mod waits;

fn main() {
    cpi::serve::<cloud::OpenStack>()
}
