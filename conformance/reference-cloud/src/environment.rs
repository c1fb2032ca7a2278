//! The reference cloud's [`Environment`]: a temporary directory as the
//! cloud, a config for `cpi-reference`, and inspection by reading the same
//! files the CPI writes.

use crate::config::Break;
use crate::store::{ChaosDraw, ChaosShares, Faults, Store};
use harness::{Chaos, ChaosCounts, CpiCommand, Environment, Fault, Inventory, RegistryEndpoint};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The image a light stemcell refers to, made before the suite starts.
pub const LIGHT_IMAGE: &str = "img-light";

pub struct ReferenceEnvironment {
    binary: PathBuf,
    config_path: PathBuf,
    store: Store,
    agent: Value,
    api_key: String,
    // Last: removed when the environment is dropped.
    _dir: tempfile::TempDir,
}

/// Starts the reference cloud for `cpi_binary`, unbroken.
pub fn start_environment(
    cpi_binary: &Path,
    registry: &RegistryEndpoint,
) -> Result<Box<dyn Environment>, String> {
    Ok(Box::new(ReferenceEnvironment::start(
        cpi_binary,
        registry,
        &[],
    )?))
}

impl ReferenceEnvironment {
    /// Starts the cloud with these behaviours broken.
    pub fn start(
        cpi_binary: &Path,
        registry: &RegistryEndpoint,
        breaks: &[Break],
    ) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("reference-cloud-")
            .tempdir()
            .map_err(|e| format!("making the cloud's directory: {e}"))?;
        let store = Store::new(dir.path().join("cloud"));
        store
            .init()
            .map_err(|e| format!("making the cloud's directories: {e}"))?;
        let light = store.stemcell_dir(LIGHT_IMAGE);
        std::fs::create_dir_all(&light)
            .and_then(|_| std::fs::write(light.join("root.img"), b"a light stemcell's image"))
            .map_err(|e| format!("making the light image: {e}"))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let agent = json!({
            "mbus": format!("nats://nats:mbus-{id}@127.0.0.1:4222"),
            "ntp": ["0.pool.ntp.org", "1.pool.ntp.org"],
            "blobstore": {"provider": "dav", "options": {"endpoint": "http://127.0.0.1:25250", "user": "agent", "password": format!("blob-{id}")}},
        });
        let api_key = format!("apikey-{id}");
        let config = json!({
            "dir": store.root,
            "agent": agent,
            "registry": {"endpoint": registry.url, "user": registry.username, "password": registry.password},
            "api_key": api_key,
            "break": breaks,
        });
        let config_path = dir.path().join("cpi.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("writing the CPI config: {e}"))?;
        Ok(ReferenceEnvironment {
            binary: cpi_binary.to_owned(),
            config_path,
            store,
            agent,
            api_key,
            _dir: dir,
        })
    }

    fn put_faults(&self, change: impl FnOnce(&mut Faults)) -> bool {
        self.store.update_faults(change).is_ok()
    }

    /// The disk's data directory, when it is attached to `vm`.
    fn disk_in_vm(&self, vm: &str, disk: &str) -> Result<PathBuf, String> {
        match self.store.disk(disk) {
            None => Err(format!("disk {disk} does not exist")),
            Some(d) if d.attached_to.as_deref() != Some(vm) => Err(format!(
                "disk {disk} is not attached to VM {vm} (attached to {:?})",
                d.attached_to
            )),
            Some(_) => Ok(self.store.disk_data(disk)),
        }
    }
}

impl Environment for ReferenceEnvironment {
    fn name(&self) -> &str {
        "cpi-reference"
    }

    fn cpi(&self) -> CpiCommand {
        CpiCommand {
            binary: self.binary.clone(),
            args: vec![self.config_path.to_string_lossy().into_owned()],
            env: vec![],
        }
    }

    fn heavy_stemcell_properties(&self) -> Option<Value> {
        Some(json!({"infrastructure": "reference", "architecture": "x86_64"}))
    }

    fn light_stemcell_properties(&self) -> Option<Value> {
        Some(json!({"image_id": LIGHT_IMAGE}))
    }

    fn vm_cloud_properties(&self) -> Value {
        json!({"instance_type": "small"})
    }

    fn bad_vm_cloud_properties(&self) -> (Value, &'static str) {
        (json!({"instance_type": "gigantic"}), "instance_type")
    }

    fn manual_network(&self, n: u8) -> Value {
        json!({"type": "manual", "ip": format!("10.0.0.{n}"), "netmask": "255.255.255.0", "gateway": "10.0.0.1",
               "dns": ["10.0.0.2"], "default": ["dns", "gateway"], "cloud_properties": {"subnet": "subnet-1"}})
    }

    fn dynamic_network(&self) -> Value {
        json!({"type": "dynamic", "dns": ["10.0.0.2"], "default": ["dns", "gateway"], "cloud_properties": {"subnet": "subnet-1"}})
    }

    fn disk_cloud_properties(&self) -> Value {
        json!({"type": "ssd"})
    }

    fn inventory(&self) -> Inventory {
        Inventory {
            vms: self.store.list("vms"),
            disks: self.store.list("disks"),
            stemcells: self.store.list("stemcells"),
            snapshots: self.store.list("snapshots"),
            other: self
                .store
                .list("ports")
                .into_iter()
                .map(|p| format!("port:{p}"))
                .collect(),
        }
    }

    fn vm_exists(&self, vm: &str) -> bool {
        self.store.vm(vm).is_some()
    }

    fn vm_ip(&self, vm: &str) -> Option<String> {
        self.store.vm(vm).map(|r| r.ip)
    }

    fn vm_metadata(&self, vm: &str) -> BTreeMap<String, String> {
        self.store.vm(vm).map(|r| r.metadata).unwrap_or_default()
    }

    fn agent_settings(&self, vm: &str) -> Option<Value> {
        crate::store::read_json(&self.store.vm_dir(vm).join("user_data.json"))
    }

    /// As a cloud does when an instance is terminated: its port goes, its
    /// volumes come loose.
    fn destroy_vm_out_of_band(&self, vm: &str) {
        if let Some(r) = self.store.vm(vm) {
            let _ = std::fs::remove_file(self.store.port_file(&r.port));
        }
        for disk in self.store.disks_of(vm) {
            if let Some(mut d) = self.store.disk(&disk) {
                d.attached_to = None;
                let _ = self.store.put_disk(&disk, &d);
            }
        }
        let _ = std::fs::remove_dir_all(self.store.vm_dir(vm));
    }

    fn disk_exists(&self, disk: &str) -> bool {
        self.store.disk(disk).is_some()
    }

    fn disk_attached_to(&self, disk: &str) -> Option<String> {
        self.store.disk(disk).and_then(|d| d.attached_to)
    }

    fn disk_size_mb(&self, disk: &str) -> Option<u64> {
        self.store.disk(disk).map(|d| d.size_mb)
    }

    fn disk_metadata(&self, disk: &str) -> BTreeMap<String, String> {
        self.store
            .disk(disk)
            .map(|d| d.metadata)
            .unwrap_or_default()
    }

    fn write_on_disk(
        &self,
        vm: &str,
        disk: &str,
        name: &str,
        data: &[u8],
    ) -> Option<Result<(), String>> {
        Some(self.disk_in_vm(vm, disk).and_then(|dir| {
            std::fs::write(dir.join(name), data).map_err(|e| format!("writing {name}: {e}"))
        }))
    }

    fn read_on_disk(&self, vm: &str, disk: &str, name: &str) -> Option<Result<Vec<u8>, String>> {
        Some(self.disk_in_vm(vm, disk).and_then(|dir| {
            std::fs::read(dir.join(name)).map_err(|e| format!("reading {name}: {e}"))
        }))
    }

    fn inject(&self, fault: Fault) -> bool {
        match fault {
            Fault::CreateVmAfterVmExists => self.put_faults(|f| f.create_vm_after_vm_exists = true),
            Fault::Transient { times } => self.put_faults(|f| f.transient = times),
            Fault::Persistent => self.put_faults(|f| f.persistent = true),
            Fault::Latency(d) => self.put_faults(|f| f.latency_ms = d.as_millis() as u64),
            Fault::DropConnection => self.put_faults(|f| f.drop = 1),
        }
    }

    fn clear_faults(&self) {
        self.store.clear_faults();
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.api_key.clone()]
    }

    fn agent_config(&self) -> Option<Value> {
        Some(self.agent.clone())
    }

    /// Throttling and server errors, drawn by each request before the cloud
    /// acts. This cloud cannot act after and lose the answer, nor drop a
    /// body, nor limit a rate: asked for those, it answers false.
    fn chaos(&self, chaos: Option<Chaos>) -> bool {
        match chaos {
            None => self.store.put_chaos(None).is_ok(),
            Some(c) if c.lost_answer > 0.0 || c.drop_mid_body > 0.0 || c.rate_limit.is_some() => {
                false
            }
            Some(c) => self
                .store
                .put_chaos(Some(&ChaosShares {
                    throttle: c.throttle,
                    server_error: c.server_error,
                }))
                .is_ok(),
        }
    }

    fn chaos_counts(&self) -> ChaosCounts {
        let log = self.store.chaos_log();
        let n = |d: ChaosDraw| log.iter().filter(|x| **x == d).count() as u64;
        ChaosCounts {
            requests: log.len() as u64,
            throttled: n(ChaosDraw::Throttled),
            server_errors: n(ChaosDraw::ServerError),
            ..ChaosCounts::default()
        }
    }
}
