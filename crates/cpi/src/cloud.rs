//! What a cloud implements: one trait per capability, each method answering
//! `NotImplemented` until the cloud overrides it, and [`Cloud`] tying them to
//! a config type. The runner owns stdin, stdout, errors and versions.
#![allow(async_fn_in_trait)] // one call per process on a current-thread runtime: no Send needed

use crate::args::*;
use crate::ids::*;
use crate::{CallContext, Error, Result};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A cloud: its config, its `info`, and how it is built for one call.
pub trait Cloud: Sized + Stemcells + Vms + Disks + Snapshots + ManagedNetworks {
    /// The binary's name, for `--help`, `--version` and logs (`cpi-warden`).
    const NAME: &'static str;

    /// The typed `cpi.json`. Unknown keys are warned about, not refused.
    type Config: DeserializeOwned;

    /// `info`'s answer, from the config alone: no client, no network.
    fn info(config: &Self::Config) -> Info;

    /// Puts the `context` overrides of a director `cpi` config over the file's
    /// values. The default merges them at the top level; clouds whose
    /// properties sit deeper (`cloud.properties.aws`) override this.
    fn merge_context(config: &mut Value, overrides: &Map<String, Value>) {
        crate::config::deep_merge(config, &Value::Object(overrides.clone()));
    }

    /// Builds the cloud for one call. Must not touch the network: clients are
    /// made lazily by the methods that need them.
    fn new(config: Self::Config, ctx: CallContext) -> Result<Self>;
}

pub trait Stemcells {
    async fn create_stemcell(&self, args: CreateStemcell) -> Result<StemcellCid> {
        let _ = args;
        Err(Error::not_implemented("create_stemcell"))
    }
    /// A stemcell already gone is success.
    async fn delete_stemcell(&self, cid: StemcellCid) -> Result<()> {
        let _ = cid;
        Err(Error::not_implemented("delete_stemcell"))
    }
}

pub trait Vms {
    /// Fails part-way? Remove what was made, answer `VMCreationFailed`.
    async fn create_vm(&self, args: CreateVm) -> Result<CreatedVm> {
        let _ = args;
        Err(Error::not_implemented("create_vm"))
    }
    /// A VM already gone is success.
    async fn delete_vm(&self, cid: VmCid) -> Result<()> {
        let _ = cid;
        Err(Error::not_implemented("delete_vm"))
    }
    /// Exact: false for a missing or terminated VM, never an error for it.
    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        let _ = cid;
        Err(Error::not_implemented("has_vm"))
    }
    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        let _ = cid;
        Err(Error::not_implemented("reboot_vm"))
    }
    async fn set_vm_metadata(&self, cid: VmCid, metadata: Metadata) -> Result<()> {
        let _ = (cid, metadata);
        Err(Error::not_implemented("set_vm_metadata"))
    }
    async fn calculate_vm_cloud_properties(
        &self,
        resources: VmResources,
    ) -> Result<CloudProperties> {
        let _ = resources;
        Err(Error::not_implemented("calculate_vm_cloud_properties"))
    }
    async fn current_vm_id(&self) -> Result<VmCid> {
        Err(Error::not_implemented("current_vm_id"))
    }
}

pub trait Disks {
    async fn create_disk(&self, args: CreateDisk) -> Result<DiskCid> {
        let _ = args;
        Err(Error::not_implemented("create_disk"))
    }
    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        let _ = cid;
        Err(Error::not_implemented("delete_disk"))
    }
    async fn has_disk(&self, cid: DiskCid) -> Result<bool> {
        let _ = cid;
        Err(Error::not_implemented("has_disk"))
    }
    /// Answers the hint the agent needs to find the disk (v2 result; v1
    /// callers get null). With a registry, also updates the settings there.
    async fn attach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<DiskHint> {
        let _ = (vm, disk);
        Err(Error::not_implemented("attach_disk"))
    }
    /// A disk not attached to the VM answers `DiskNotAttached`.
    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        let _ = (vm, disk);
        Err(Error::not_implemented("detach_disk"))
    }
    async fn get_disks(&self, vm: VmCid) -> Result<Vec<DiskCid>> {
        let _ = vm;
        Err(Error::not_implemented("get_disks"))
    }
    async fn resize_disk(&self, cid: DiskCid, new_size_mb: u64) -> Result<()> {
        let _ = (cid, new_size_mb);
        Err(Error::not_implemented("resize_disk"))
    }
    async fn update_disk(&self, args: UpdateDisk) -> Result<DiskCid> {
        let _ = args;
        Err(Error::not_implemented("update_disk"))
    }
    async fn set_disk_metadata(&self, cid: DiskCid, metadata: Metadata) -> Result<()> {
        let _ = (cid, metadata);
        Err(Error::not_implemented("set_disk_metadata"))
    }
}

pub trait Snapshots {
    async fn snapshot_disk(&self, disk: DiskCid, metadata: Metadata) -> Result<SnapshotCid> {
        let _ = (disk, metadata);
        Err(Error::not_implemented("snapshot_disk"))
    }
    /// A snapshot already gone is success.
    async fn delete_snapshot(&self, cid: SnapshotCid) -> Result<()> {
        let _ = cid;
        Err(Error::not_implemented("delete_snapshot"))
    }
}

pub trait ManagedNetworks {
    async fn create_network(&self, definition: Map<String, Value>) -> Result<NetworkCid> {
        let _ = definition;
        Err(Error::not_implemented("create_network"))
    }
    async fn delete_network(&self, cid: NetworkCid) -> Result<()> {
        let _ = cid;
        Err(Error::not_implemented("delete_network"))
    }
}
