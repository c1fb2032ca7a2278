//! `cpi-echo`: a cloud with no cloud. Every method answers from its typed
//! arguments and appends `{"method", "args"}` to the file named by the
//! config's `echo.record_to`, so a test can see exactly what reached the
//! trait. `delete_network` is left unimplemented on purpose.

use cpi::*;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Config {
    echo: EchoConfig,
}

#[derive(Deserialize)]
struct EchoConfig {
    record_to: Option<PathBuf>,
    #[serde(default)]
    label: String,
    #[serde(default = "two")]
    api_version: u32,
    #[serde(default)]
    panic_on: Option<String>,
}

fn two() -> u32 {
    2
}

struct Echo {
    cfg: EchoConfig,
}

impl Echo {
    fn record(&self, method: &str, args: Value) {
        if self.cfg.panic_on.as_deref() == Some(method) {
            panic!("echo was told to panic in {method}");
        }
        tracing::info!("{method} reached the cloud");
        if let Some(path) = &self.cfg.record_to {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("record file opens");
            let line = json!({"method": method, "label": self.cfg.label, "args": args});
            writeln!(f, "{line}").expect("record file writes");
        }
    }
}

impl Cloud for Echo {
    const NAME: &'static str = "cpi-echo";
    type Config = Config;

    fn info(config: &Config) -> Info {
        Info {
            stemcell_formats: vec!["echo-raw".into(), "echo-light".into()],
            api_version: config.echo.api_version,
        }
    }

    fn new(config: Config, _ctx: CallContext) -> Result<Self> {
        Ok(Echo { cfg: config.echo })
    }
}

impl Stemcells for Echo {
    async fn create_stemcell(&self, a: CreateStemcell) -> Result<StemcellCid> {
        self.record(
            "create_stemcell",
            json!({"image_path": a.image_path, "cloud_properties": a.cloud_properties, "tags": a.tags}),
        );
        Ok(StemcellCid::new("stemcell-1"))
    }
    async fn delete_stemcell(&self, cid: StemcellCid) -> Result<()> {
        self.record("delete_stemcell", json!({"cid": cid}));
        Ok(())
    }
}

impl Vms for Echo {
    async fn create_vm(&self, a: CreateVm) -> Result<CreatedVm> {
        self.record(
            "create_vm",
            json!({"agent_id": a.agent_id, "stemcell_cid": a.stemcell_cid, "cloud_properties": a.cloud_properties,
                   "networks": a.networks, "disk_cids": a.disk_cids, "env": a.env}),
        );
        let mut networks = a.networks;
        for n in networks.values_mut() {
            n.mac.get_or_insert_with(|| "02:00:00:00:00:01".into());
        }
        Ok(CreatedVm {
            cid: VmCid::new(format!("vm-{}", a.agent_id)),
            networks,
        })
    }
    async fn delete_vm(&self, cid: VmCid) -> Result<()> {
        self.record("delete_vm", json!({"cid": cid}));
        Ok(())
    }
    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        self.record("has_vm", json!({"cid": cid}));
        Ok(cid.as_str() == "vm-exists")
    }
    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        self.record("reboot_vm", json!({"cid": cid}));
        if cid.as_str() == "vm-missing" {
            return Err(Error::vm_not_found(&cid).context("reboot_vm"));
        }
        Ok(())
    }
    async fn set_vm_metadata(&self, cid: VmCid, m: Metadata) -> Result<()> {
        self.record("set_vm_metadata", json!({"cid": cid, "metadata": m}));
        Ok(())
    }
    async fn calculate_vm_cloud_properties(&self, r: VmResources) -> Result<CloudProperties> {
        self.record(
            "calculate_vm_cloud_properties",
            json!({"cpu": r.cpu, "ram": r.ram, "ephemeral_disk_size": r.ephemeral_disk_size}),
        );
        let mut m = Map::new();
        m.insert(
            "instance_type".into(),
            json!(format!("echo-{}x{}", r.cpu, r.ram)),
        );
        m.insert(
            "ephemeral_disk".into(),
            json!({"size": r.ephemeral_disk_size}),
        );
        Ok(m)
    }
    async fn current_vm_id(&self) -> Result<VmCid> {
        self.record("current_vm_id", json!({}));
        Ok(VmCid::new("vm-current"))
    }
}

impl Disks for Echo {
    async fn create_disk(&self, a: CreateDisk) -> Result<DiskCid> {
        self.record(
            "create_disk",
            json!({"size_mb": a.size_mb, "cloud_properties": a.cloud_properties, "vm_cid": a.vm_cid}),
        );
        Ok(DiskCid::new(format!("disk-{}", a.size_mb)))
    }
    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        self.record("delete_disk", json!({"cid": cid}));
        Ok(())
    }
    async fn has_disk(&self, cid: DiskCid) -> Result<bool> {
        self.record("has_disk", json!({"cid": cid}));
        Ok(cid.as_str() != "disk-missing")
    }
    async fn attach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<DiskHint> {
        self.record("attach_disk", json!({"vm": vm, "disk": disk}));
        let mut hint = Map::new();
        hint.insert("path".into(), json!("/dev/sdc"));
        Ok(DiskHint::Object(hint))
    }
    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        self.record("detach_disk", json!({"vm": vm, "disk": disk}));
        if disk.as_str() == "disk-detached" {
            return Err(Error::disk_not_attached(&vm, &disk));
        }
        Ok(())
    }
    async fn get_disks(&self, vm: VmCid) -> Result<Vec<DiskCid>> {
        self.record("get_disks", json!({"vm": vm}));
        Ok(vec![DiskCid::new("disk-1")])
    }
    async fn resize_disk(&self, cid: DiskCid, size: u64) -> Result<()> {
        self.record("resize_disk", json!({"cid": cid, "new_size_mb": size}));
        Ok(())
    }
    async fn update_disk(&self, a: UpdateDisk) -> Result<DiskCid> {
        self.record(
            "update_disk",
            json!({"cid": a.disk_cid, "new_size_mb": a.new_size_mb, "cloud_properties": a.cloud_properties}),
        );
        Ok(a.disk_cid)
    }
    async fn set_disk_metadata(&self, cid: DiskCid, m: Metadata) -> Result<()> {
        self.record("set_disk_metadata", json!({"cid": cid, "metadata": m}));
        Ok(())
    }
}

impl Snapshots for Echo {
    async fn snapshot_disk(&self, disk: DiskCid, m: Metadata) -> Result<SnapshotCid> {
        self.record("snapshot_disk", json!({"disk": disk, "metadata": m}));
        Ok(SnapshotCid::new(format!("snap-{disk}")))
    }
    async fn delete_snapshot(&self, cid: SnapshotCid) -> Result<()> {
        self.record("delete_snapshot", json!({"cid": cid}));
        Ok(())
    }
}

impl ManagedNetworks for Echo {
    async fn create_network(&self, def: Map<String, Value>) -> Result<NetworkCid> {
        self.record("create_network", json!({"definition": def}));
        Ok(NetworkCid::new("net-1"))
    }
}

fn main() {
    cpi::serve::<Echo>()
}
