//! The conformance environment for cpi-softlayer: the fake SoftLayer, a
//! `cpi.json` in the form the softlayer_cpi job renders (plus short waits),
//! and inspection of the fake's state.

use crate::faults::Action;
use crate::FakeSoftLayer;
use base64::Engine;
use harness::{
    Chaos, ChaosCounts, CpiCommand, Environment, Fault, Inventory, RegistryEndpoint, Served,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MBUS_PASSWORD: &str = "mbus-secret-4c1f9e";
const BLOBSTORE_PASSWORD: &str = "blobstore-secret-8d2a7b";
const PRIVATE_VLAN: u64 = 1_001;
const PUBLIC_VLAN: u64 = 1_002;

pub struct SoftLayerEnvironment {
    pub fake: FakeSoftLayer,
    cpi_binary: PathBuf,
    config_path: PathBuf,
    registry_password: String,
    _dir: tempfile::TempDir,
}

/// Starts the fake and writes a CPI config for `cpi_binary` pointing at it
/// and at the harness's `registry`.
pub fn start_environment(
    cpi_binary: &Path,
    registry: &RegistryEndpoint,
) -> Result<Box<dyn Environment>, String> {
    SoftLayerEnvironment::start(cpi_binary, registry).map(|e| Box::new(e) as Box<dyn Environment>)
}

/// The `cpi.json` the job renders, for a fake at `endpoint` (object
/// storage at `swift_endpoint` as `swift_username`, segments of 256 KiB so
/// that the suite's 1 MiB image is a segmented upload).
pub fn cpi_config(
    endpoint: &str,
    swift_endpoint: &str,
    swift_username: &str,
    registry: &RegistryEndpoint,
) -> Value {
    json!({"cloud": {"plugin": "softlayer", "properties": {
        "softlayer": {
            "username": crate::DEFAULT_USERNAME,
            "api_key": crate::DEFAULT_API_KEY,
            "api_endpoint": endpoint,
            "swift_endpoint": swift_endpoint,
            "swift_username": swift_username,
            "swift_segment_size": 262_144,
            "timeouts": {"vm_ready": 30, "disk_ready": 30, "stemcell_ready": 30, "api_retry": 5, "request": 10, "poll_max": 0.05}
        },
        "registry": {
            "user": registry.username, "password": registry.password, "address": registry.host,
            "http": {"port": registry.port, "user": registry.username, "password": registry.password},
            "endpoint": format!("http://{}:{}@{}:{}", registry.username, registry.password, registry.host, registry.port)
        },
        "agent": {
            "ntp": ["0.pool.ntp.org"],
            "mbus": format!("https://mbus:{MBUS_PASSWORD}@0.0.0.0:6868"),
            "blobstore": {"provider": "dav", "options": {
                "endpoint": "http://10.0.0.6:25250", "user": "agent", "password": BLOBSTORE_PASSWORD}}
        }
    }}})
}

impl SoftLayerEnvironment {
    pub fn start(
        cpi_binary: &Path,
        registry: &RegistryEndpoint,
    ) -> Result<SoftLayerEnvironment, String> {
        let fake =
            FakeSoftLayer::start().map_err(|e| format!("starting the fake SoftLayer: {e}"))?;
        // As on SoftLayer, a new guest provisions and a new volume is listed
        // only after a few looks, so that every check (and the load mode's
        // chaos) meets a guest still provisioning.
        fake.set_provisioning_polls(2);
        fake.set_volume_polls(1);
        let dir = tempfile::tempdir().map_err(|e| format!("making a temp dir: {e}"))?;
        let config_path = dir.path().join("cpi.json");
        let config = cpi_config(
            &fake.endpoint(),
            &fake.swift_endpoint(),
            &fake.swift_username(),
            registry,
        );
        std::fs::write(&config_path, config.to_string())
            .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
        Ok(SoftLayerEnvironment {
            fake,
            cpi_binary: cpi_binary.to_owned(),
            config_path,
            registry_password: registry.password.clone(),
            _dir: dir,
        })
    }

    /// Changes the CPI config in place (tests shorten waits this way).
    pub fn edit_config(&self, f: impl FnOnce(&mut Value)) -> Result<(), String> {
        let text = std::fs::read_to_string(&self.config_path).map_err(|e| e.to_string())?;
        let mut config: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        f(&mut config);
        std::fs::write(&self.config_path, config.to_string()).map_err(|e| e.to_string())
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    fn guest_id(vm: &str) -> Option<u64> {
        vm.trim().parse().ok()
    }
}

/// User metadata as the CPI stores it: base64 (URL-safe or standard) JSON.
pub fn decode_user_data(raw: &str) -> Option<Value> {
    let engines = [
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|e| e.decode(raw.trim()).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .or_else(|| serde_json::from_str(raw).ok())
}

impl Environment for SoftLayerEnvironment {
    fn name(&self) -> &str {
        "cpi-softlayer"
    }

    fn cpi(&self) -> CpiCommand {
        CpiCommand {
            binary: self.cpi_binary.clone(),
            args: vec![format!("-configFile={}", self.config_path.display())],
            env: vec![],
        }
    }

    fn heavy_stemcell_properties(&self) -> Option<Value> {
        // What the Go CPI reads from a heavy stemcell: where to import
        // (`datacenter-name`, the object storage cluster) and the OS code.
        Some(
            json!({"infrastructure": "softlayer", "architecture": "x86_64", "root_device_name": "/dev/xvda",
                    "datacenter-name": "lon02", "os-code": "UBUNTU_22_64"}),
        )
    }

    fn light_stemcell_properties(&self) -> Option<Value> {
        let (id, gid) = self.fake.seeded_template();
        Some(
            json!({"infrastructure": "softlayer", "architecture": "x86_64", "root_device_name": "/dev/xvda",
                    "virtual-disk-image-id": id, "virtual-disk-image-uuid": gid, "datacenter-name": "lon02"}),
        )
    }

    fn vm_cloud_properties(&self) -> Value {
        json!({"hostname_prefix": "conformance", "domain": "example.test", "datacenter": "lon02",
               "cpu": 2, "memory": 4096, "hourly_billing_flag": true, "local_disk_flag": true})
    }

    fn bad_vm_cloud_properties(&self) -> (Value, &'static str) {
        let mut props = self.vm_cloud_properties();
        props["datacenter"] = json!("nowhere99");
        (props, "datacenter")
    }

    fn manual_network(&self, n: u8) -> Value {
        // Automatic addresses start at .211: manual ones stay below.
        json!({"type": "manual", "ip": format!("10.112.10.{}", n.clamp(2, 210)),
               "netmask": "255.255.255.0", "gateway": "10.112.10.1", "dns": ["10.0.80.11"],
               "default": ["dns", "gateway"], "cloud_properties": {"vlan_ids": [PRIVATE_VLAN, PUBLIC_VLAN]}})
    }

    fn dynamic_network(&self) -> Value {
        json!({"type": "dynamic", "dns": ["10.0.80.11"], "default": ["dns", "gateway"],
               "cloud_properties": {"vlan_ids": [PRIVATE_VLAN, PUBLIC_VLAN]}})
    }

    fn disk_cloud_properties(&self) -> Value {
        // `datacenter` is used when a disk is made without a VM.
        json!({"iops": 1000, "snapshot_space": 20, "datacenter": "lon02"})
    }

    fn inventory(&self) -> Inventory {
        self.fake.with_state(|s| Inventory {
            vms: s.guests.keys().map(u64::to_string).collect(),
            disks: s.volumes.keys().map(u64::to_string).collect(),
            stemcells: s.templates.keys().map(u64::to_string).collect(),
            snapshots: s.snapshots.keys().map(u64::to_string).collect(),
            other: s.swift.listing(),
        })
    }

    fn vm_exists(&self, vm: &str) -> bool {
        Self::guest_id(vm).is_some_and(|id| self.fake.with_state(|s| s.guests.contains_key(&id)))
    }

    fn vm_ip(&self, vm: &str) -> Option<String> {
        let id = Self::guest_id(vm)?;
        self.fake
            .with_state(|s| s.guests.get(&id).map(|g| g.backend_ip.clone()))
    }

    fn vm_metadata(&self, vm: &str) -> BTreeMap<String, String> {
        let Some(id) = Self::guest_id(vm) else {
            return BTreeMap::new();
        };
        self.fake.with_state(|s| {
            s.guests
                .get(&id)
                .map(|g| {
                    g.tags
                        .iter()
                        .filter_map(|t| t.split_once(':'))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn agent_settings(&self, vm: &str) -> Option<Value> {
        let id = Self::guest_id(vm)?;
        let raw = self
            .fake
            .with_state(|s| s.guests.get(&id).and_then(|g| g.user_data.clone()))?;
        decode_user_data(&raw)
    }

    fn destroy_vm_out_of_band(&self, vm: &str) {
        if let Some(id) = Self::guest_id(vm) {
            self.fake.with_state(|s| s.remove_guest(id));
        }
    }

    fn disk_exists(&self, disk: &str) -> bool {
        Self::guest_id(disk).is_some_and(|id| self.fake.with_state(|s| s.volumes.contains_key(&id)))
    }

    fn disk_attached_to(&self, disk: &str) -> Option<String> {
        let id = Self::guest_id(disk)?;
        self.fake.with_state(|s| {
            s.volumes
                .get(&id)
                .and_then(|v| v.allowed_guests.iter().next().map(u64::to_string))
        })
    }

    fn disk_size_mb(&self, disk: &str) -> Option<u64> {
        let id = Self::guest_id(disk)?;
        self.fake
            .with_state(|s| s.volumes.get(&id).map(|v| v.capacity_gb * 1024))
    }

    fn disk_metadata(&self, disk: &str) -> BTreeMap<String, String> {
        let Some(id) = Self::guest_id(disk) else {
            return BTreeMap::new();
        };
        let notes = self
            .fake
            .with_state(|s| s.volumes.get(&id).and_then(|v| v.notes.clone()));
        let mut map: BTreeMap<String, String> = notes
            .and_then(|n| serde_json::from_str(&n).ok())
            .unwrap_or_default();
        // The CPI's own bookkeeping (the size the director asked for).
        map.remove("bosh_size_mb");
        map
    }

    fn write_on_disk(
        &self,
        vm: &str,
        disk: &str,
        name: &str,
        data: &[u8],
    ) -> Option<Result<(), String>> {
        let (vm_id, disk_id) = (Self::guest_id(vm)?, Self::guest_id(disk)?);
        Some(self.fake.with_state(|s| match s.volumes.get_mut(&disk_id) {
            Some(v) if v.allowed_guests.contains(&vm_id) => {
                v.files.insert(name.to_owned(), data.to_vec());
                Ok(())
            }
            Some(_) => Err(format!(
                "volume {disk_id} is not authorised for guest {vm_id}"
            )),
            None => Err(format!("volume {disk_id} does not exist")),
        }))
    }

    fn read_on_disk(&self, vm: &str, disk: &str, name: &str) -> Option<Result<Vec<u8>, String>> {
        let (vm_id, disk_id) = (Self::guest_id(vm)?, Self::guest_id(disk)?);
        Some(self.fake.with_state(|s| {
            match s.volumes.get(&disk_id) {
                Some(v) if v.allowed_guests.contains(&vm_id) => v
                    .files
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("no file '{name}' on volume {disk_id}")),
                Some(_) => Err(format!(
                    "volume {disk_id} is not authorised for guest {vm_id}"
                )),
                None => Err(format!("volume {disk_id} does not exist")),
            }
        }))
    }

    fn inject(&self, fault: Fault) -> bool {
        match fault {
            Fault::CreateVmAfterVmExists => self.fake.fail_next(
                Some("SoftLayer_Virtual_Guest::setUserMetadata"),
                1,
                Action::public("Unable to set user metadata (injected)"),
            ),
            Fault::Transient { times } => self.fake.fail_next(None, times, Action::unavailable()),
            Fault::Persistent => self.fake.fail_next(None, u32::MAX, Action::unavailable()),
            Fault::Latency(d) => self.fake.set_latency(Some(d)),
            Fault::DropConnection => self.fake.fail_next(None, 1, Action::Drop),
        }
        true
    }

    fn clear_faults(&self) {
        self.fake.clear_faults();
    }

    fn chaos(&self, chaos: Option<Chaos>) -> bool {
        self.fake.set_chaos(chaos);
        true
    }

    fn chaos_counts(&self) -> ChaosCounts {
        self.fake.chaos_counts()
    }

    fn served(&self) -> Option<Served> {
        Some(Served {
            requests: self.fake.served(),
        })
    }

    fn reset_served(&self) {
        self.fake.reset_served();
    }

    fn agent_config(&self) -> Option<Value> {
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config_path).ok()?).ok()?;
        let agent = &config["cloud"]["properties"]["agent"];
        Some(json!({"mbus": agent["mbus"], "ntp": agent["ntp"], "blobstore": agent["blobstore"]}))
    }

    fn unknown_cid(&self, _kind: &str) -> String {
        // SoftLayer ids are integers; this one is never handed out.
        "987654321".into()
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            crate::DEFAULT_API_KEY.to_owned(),
            self.registry_password.clone(),
            MBUS_PASSWORD.to_owned(),
            BLOBSTORE_PASSWORD.to_owned(),
        ];
        // CHAP passwords the fake has handed out so far.
        self.fake.with_state(|s| {
            secrets.extend(
                s.guests
                    .values()
                    .filter_map(|g| g.allowed_host.as_ref())
                    .map(|h| h.password.clone()),
            );
            // Object storage tokens handed out so far.
            secrets.extend(s.swift.tokens.iter().cloned());
        });
        secrets
    }
}
