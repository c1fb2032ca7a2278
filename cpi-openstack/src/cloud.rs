//! The OpenStack cloud: config, the lazily built session, and the capability
//! traits, each delegating to the module that holds the method.

use crate::config::{Config, OpenStackOptions};
use crate::session::Session;
use agent::{AgentOptions, RegistryConfig};
use cpi::wait::Backoff;
use cpi::*;
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

pub struct OpenStack {
    pub opts: Arc<OpenStackOptions>,
    pub agent: AgentOptions,
    pub registry: Option<RegistryConfig>,
    pub ctx: CallContext,
    session: OnceLock<Session>,
}

impl OpenStack {
    /// The session, built on first use (no network until a request).
    pub fn session(&self) -> Result<&Session> {
        if let Some(s) = self.session.get() {
            return Ok(s);
        }
        let s = Session::new(self.opts.clone(), self.ctx.ca_cert_path.as_deref())?;
        Ok(self.session.get_or_init(|| s))
    }

    /// The bound for waiting on a resource's state.
    pub fn wait_backoff(&self) -> Backoff {
        crate::waits::backoff(
            self.opts.wait_resource_poll_interval,
            self.opts.state_timeout(),
        )
    }
}

impl Cloud for OpenStack {
    const NAME: &'static str = "cpi-openstack";
    type Config = Config;

    fn info(_: &Config) -> Info {
        Info {
            stemcell_formats: vec![
                "openstack-raw".into(),
                "openstack-qcow2".into(),
                "openstack-light".into(),
            ],
            api_version: 2,
        }
    }

    fn merge_context(config: &mut Value, overrides: &Map<String, Value>) {
        cpi::config::merge_at(config, &["cloud", "properties", "openstack"], overrides);
    }

    fn new(config: Config, ctx: CallContext) -> Result<Self> {
        let props = config.cloud.properties;
        props.openstack.validate()?;
        Ok(OpenStack {
            opts: Arc::new(props.openstack),
            agent: props.agent,
            registry: props.registry,
            ctx,
            session: OnceLock::new(),
        })
    }
}

impl Stemcells for OpenStack {
    async fn create_stemcell(&self, args: CreateStemcell) -> Result<StemcellCid> {
        crate::stemcell::create(self, args)
            .await
            .context("create_stemcell")
    }
    async fn delete_stemcell(&self, cid: StemcellCid) -> Result<()> {
        crate::stemcell::delete(self, &cid)
            .await
            .with_context(|| format!("delete_stemcell {cid}"))
    }
}

impl Vms for OpenStack {
    async fn create_vm(&self, args: CreateVm) -> Result<CreatedVm> {
        crate::vm_create::create(self, args)
            .await
            .context("create_vm")
    }
    async fn delete_vm(&self, cid: VmCid) -> Result<()> {
        crate::vm::delete(self, &cid)
            .await
            .with_context(|| format!("delete_vm {cid}"))
    }
    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        crate::vm::has(self, &cid)
            .await
            .with_context(|| format!("has_vm {cid}"))
    }
    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        crate::vm::reboot(self, &cid)
            .await
            .with_context(|| format!("reboot_vm {cid}"))
    }
    async fn set_vm_metadata(&self, cid: VmCid, metadata: Metadata) -> Result<()> {
        crate::vm::set_metadata(self, &cid, &metadata)
            .await
            .with_context(|| format!("set_vm_metadata {cid}"))
    }
    async fn calculate_vm_cloud_properties(
        &self,
        resources: VmResources,
    ) -> Result<CloudProperties> {
        crate::nova::cloud_properties_for(self, &resources)
            .await
            .context("calculate_vm_cloud_properties")
    }
}

impl Disks for OpenStack {
    async fn create_disk(&self, args: CreateDisk) -> Result<DiskCid> {
        crate::disk::create(self, args).await.context("create_disk")
    }
    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        crate::disk::delete(self, &cid)
            .await
            .with_context(|| format!("delete_disk {cid}"))
    }
    async fn has_disk(&self, cid: DiskCid) -> Result<bool> {
        crate::disk::has(self, &cid)
            .await
            .with_context(|| format!("has_disk {cid}"))
    }
    async fn attach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<DiskHint> {
        crate::disk::attach(self, &vm, &disk)
            .await
            .with_context(|| format!("attach_disk {disk} to {vm}"))
    }
    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        crate::disk::detach(self, &vm, &disk)
            .await
            .with_context(|| format!("detach_disk {disk} from {vm}"))
    }
    async fn get_disks(&self, vm: VmCid) -> Result<Vec<DiskCid>> {
        crate::disk::list(self, &vm)
            .await
            .with_context(|| format!("get_disks {vm}"))
    }
    async fn resize_disk(&self, cid: DiskCid, new_size_mb: u64) -> Result<()> {
        crate::disk::resize(self, &cid, new_size_mb)
            .await
            .with_context(|| format!("resize_disk {cid}"))
    }
    async fn set_disk_metadata(&self, cid: DiskCid, metadata: Metadata) -> Result<()> {
        crate::disk::set_metadata(self, &cid, &metadata)
            .await
            .with_context(|| format!("set_disk_metadata {cid}"))
    }
}

impl Snapshots for OpenStack {
    async fn snapshot_disk(&self, disk: DiskCid, metadata: Metadata) -> Result<SnapshotCid> {
        crate::snapshot::create(self, &disk, &metadata)
            .await
            .with_context(|| format!("snapshot_disk {disk}"))
    }
    async fn delete_snapshot(&self, cid: SnapshotCid) -> Result<()> {
        crate::snapshot::delete(self, &cid)
            .await
            .with_context(|| format!("delete_snapshot {cid}"))
    }
}

impl ManagedNetworks for OpenStack {}
