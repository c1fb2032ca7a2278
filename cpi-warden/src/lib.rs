//! The BOSH warden CPI (bosh-lite): VMs are containers on a Garden server,
//! persistent disks are loop-mounted ext4 files bind-mounted into them.
//! The binary is `cpi::serve::<cloud::Warden>()`; the Garden client is
//! public for tests and other tools.

pub mod agent_env;
pub mod cloud;
pub mod cloud_props;
pub mod config;
pub mod disk;
pub mod ext4_template;
pub mod garden;
pub mod host;
pub mod loop_device;
pub mod reclaim;
pub mod reference;
pub mod stemcell;
pub mod vm;
