//! The conformance suite's view of this cloud: a fake OpenStack, a CPI
//! config pointing at it (the Ruby job's `PATH CACERT_PATH` form), and
//! inspection of the fake's state.

use crate::faults::{FaultAction, FaultRule};
use crate::{FakeOpenStack, Kind, DOMAIN, LIGHT_IMAGE_ID, NET_ID, PROJECT, REGION, USERNAME};
use harness::{
    Chaos, ChaosCounts, CpiCommand, Environment, Fault, Inventory, RegistryEndpoint, Served,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const MBUS_PASSWORD: &str = "mbus-secret-7c1d";

pub struct OpenStackEnvironment {
    pub fake: FakeOpenStack,
    cpi_binary: PathBuf,
    config: PathBuf,
    cacert: PathBuf,
    password: String,
    registry_password: String,
    _dir: tempfile::TempDir,
}

/// The CPI config for `fake`, as the openstack_cpi job renders it.
pub fn cpi_config(
    fake: &FakeOpenStack,
    password: &str,
    registry: Option<&RegistryEndpoint>,
) -> Value {
    let mut props = json!({
        "openstack": {
            "auth_url": fake.auth_url(), "username": USERNAME, "api_key": password, "domain": DOMAIN,
            "project": PROJECT, "region": REGION, "endpoint_type": "publicURL",
            "default_key_name": "bosh", "default_security_groups": ["default"], "default_volume_type": null,
            "wait_resource_poll_interval": 1, "state_timeout": 60, "ignore_server_availability_zone": false,
            "use_nova_networking": false, "use_dhcp": true, "human_readable_vm_names": false,
        },
        "agent": {"mbus": format!("https://mbus:{MBUS_PASSWORD}@0.0.0.0:6868"), "ntp": ["0.pool.ntp.org"],
                  "blobstore": {"provider": "dav", "options": {"endpoint": "http://10.0.0.6:25250", "user": "agent", "password": "blob-secret-9e2"}}},
    });
    if let Some(r) = registry {
        props["registry"] = json!({"endpoint": r.url, "user": r.username, "password": r.password});
    }
    json!({"cloud": {"plugin": "openstack", "properties": props}})
}

pub fn start_environment(
    cpi_binary: &Path,
    registry: &RegistryEndpoint,
) -> Result<Box<dyn Environment>, String> {
    let password = format!("os-pw-{}", &crate::state::new_id()[..8]);
    let fake =
        FakeOpenStack::start(&password).map_err(|e| format!("starting the fake OpenStack: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("cpi.json");
    let cacert = dir.path().join("cacert.pem");
    let mut cfg = cpi_config(&fake, &password, Some(registry));
    // The token cache as on a BOSH VM (where it lives under /var/vcap/data).
    cfg["cloud"]["properties"]["openstack"]["token_cache_dir"] =
        json!(dir.path().join("token-cache").display().to_string());
    std::fs::write(&config, cfg.to_string()).map_err(|e| e.to_string())?;
    std::fs::write(&cacert, "").map_err(|e| e.to_string())?;
    Ok(Box::new(OpenStackEnvironment {
        fake,
        cpi_binary: cpi_binary.to_owned(),
        config,
        cacert,
        password,
        registry_password: registry.password.clone(),
        _dir: dir,
    }))
}

fn strings(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Environment for OpenStackEnvironment {
    fn name(&self) -> &str {
        "cpi-openstack"
    }
    fn cpi(&self) -> CpiCommand {
        CpiCommand {
            binary: self.cpi_binary.clone(),
            args: vec![
                self.config.display().to_string(),
                self.cacert.display().to_string(),
            ],
            env: vec![],
        }
    }
    fn heavy_stemcell_properties(&self) -> Option<Value> {
        Some(
            json!({"name": "bosh-openstack-kvm-ubuntu-jammy-go_agent", "version": "1.0", "disk_format": "qcow2",
            "container_format": "bare", "os_type": "linux", "os_distro": "ubuntu", "architecture": "x86_64", "auto_disk_config": true}),
        )
    }
    fn light_stemcell_properties(&self) -> Option<Value> {
        Some(
            json!({"name": "bosh-openstack-kvm-ubuntu-jammy-go_agent", "version": "1.0", "image_id": LIGHT_IMAGE_ID}),
        )
    }
    fn vm_cloud_properties(&self) -> Value {
        json!({"instance_type": "m1.small"})
    }
    fn bad_vm_cloud_properties(&self) -> (Value, &'static str) {
        (json!({"instance_type": "no-such-flavor"}), "instance_type")
    }
    fn manual_network(&self, n: u8) -> Value {
        json!({"type": "manual", "ip": format!("10.0.0.{}", 10 + n as u32), "netmask": "255.255.255.0", "gateway": "10.0.0.1",
            "dns": ["10.0.0.2"], "default": ["dns", "gateway"], "cloud_properties": {"net_id": NET_ID}})
    }
    fn dynamic_network(&self) -> Value {
        json!({"type": "dynamic", "dns": ["10.0.0.2"], "default": ["dns", "gateway"], "cloud_properties": {"net_id": NET_ID}})
    }
    fn disk_cloud_properties(&self) -> Value {
        json!({})
    }
    fn inventory(&self) -> Inventory {
        let ids = |v: Vec<Value>| {
            v.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        };
        let mut other: Vec<String> = self
            .fake
            .ports()
            .iter()
            .filter_map(|p| p["id"].as_str().map(|i| format!("port:{i}")))
            .collect();
        other.extend(
            self.fake
                .floating_ips()
                .iter()
                .filter(|f| !f["port_id"].is_null())
                .map(|f| {
                    format!(
                        "floating_ip:{}",
                        f["floating_ip_address"].as_str().unwrap_or("")
                    )
                }),
        );
        other.extend(
            self.fake
                .pool_members()
                .iter()
                .filter_map(|m| m["id"].as_str().map(|i| format!("pool_member:{i}"))),
        );
        other.extend(
            self.fake
                .server_groups()
                .iter()
                .filter_map(|g| g["id"].as_str().map(|i| format!("server_group:{i}"))),
        );
        Inventory {
            vms: ids(self.fake.servers()),
            disks: ids(self.fake.volumes()),
            stemcells: ids(self.fake.images()),
            snapshots: ids(self.fake.snapshots()),
            other,
        }
    }
    fn vm_exists(&self, vm: &str) -> bool {
        self.fake
            .server(vm)
            .is_some_and(|s| !matches!(s["status"].as_str(), Some("DELETED" | "SOFT_DELETED")))
    }
    fn vm_ip(&self, vm: &str) -> Option<String> {
        self.fake
            .ports()
            .iter()
            .find(|p| p["device_id"] == vm)
            .and_then(|p| p["fixed_ips"][0]["ip_address"].as_str().map(str::to_owned))
    }
    fn vm_metadata(&self, vm: &str) -> BTreeMap<String, String> {
        self.fake
            .server(vm)
            .map(|s| strings(&s["metadata"]))
            .unwrap_or_default()
    }
    fn agent_settings(&self, vm: &str) -> Option<Value> {
        serde_json::from_str(&self.fake.user_data(vm)?).ok()
    }
    fn destroy_vm_out_of_band(&self, vm: &str) {
        self.fake.destroy_server(vm);
    }
    fn disk_exists(&self, disk: &str) -> bool {
        self.fake.volume(disk).is_some()
    }
    fn disk_attached_to(&self, disk: &str) -> Option<String> {
        self.fake.volume(disk)?["attachments"][0]["server_id"]
            .as_str()
            .map(str::to_owned)
    }
    fn disk_size_mb(&self, disk: &str) -> Option<u64> {
        self.fake.volume(disk)?["size"].as_u64().map(|g| g * 1024)
    }
    fn disk_metadata(&self, disk: &str) -> BTreeMap<String, String> {
        self.fake
            .volume(disk)
            .map(|v| strings(&v["metadata"]))
            .unwrap_or_default()
    }
    fn write_on_disk(
        &self,
        vm: &str,
        disk: &str,
        name: &str,
        data: &[u8],
    ) -> Option<Result<(), String>> {
        if self.disk_attached_to(disk).as_deref() != Some(vm) {
            return Some(Err(format!("volume {disk} is not attached to {vm}")));
        }
        self.fake.write_file(disk, name, data);
        Some(Ok(()))
    }
    fn read_on_disk(&self, vm: &str, disk: &str, name: &str) -> Option<Result<Vec<u8>, String>> {
        if self.disk_attached_to(disk).as_deref() != Some(vm) {
            return Some(Err(format!("volume {disk} is not attached to {vm}")));
        }
        Some(
            self.fake
                .read_file(disk, name)
                .ok_or_else(|| format!("no file {name} on {disk}")),
        )
    }
    fn inject(&self, fault: Fault) -> bool {
        match fault {
            Fault::CreateVmAfterVmExists => self.fake.fail_next(Kind::Server),
            Fault::Transient { times } => self.fake.inject(
                FaultRule::new(
                    None,
                    "",
                    FaultAction::Status {
                        code: 503,
                        retry_after: None,
                    },
                )
                .times(times),
            ),
            Fault::Persistent => self.fake.inject(
                FaultRule::new(
                    None,
                    "",
                    FaultAction::Status {
                        code: 500,
                        retry_after: None,
                    },
                )
                .times(0),
            ),
            Fault::Latency(d) => self
                .fake
                .inject(FaultRule::new(None, "", FaultAction::Latency(d)).times(0)),
            Fault::DropConnection => self
                .fake
                .inject(FaultRule::new(None, "", FaultAction::Drop)),
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
    fn instant_transitions(&self) -> bool {
        self.fake.set_transition_polls(0);
        true
    }
    fn settle_stemcell(&self, cid: &str) {
        // Reads move a pending transition along (the fake's rule).
        let id = cid.trim_end_matches(" light");
        for _ in 0..10 {
            let mut st = self.fake.shared.state();
            match st.read(crate::Kind::Image, id) {
                Some(img) if img["status"] != "active" => continue,
                _ => break,
            }
        }
    }
    fn agent_config(&self) -> Option<Value> {
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.config).ok()?).ok()?;
        Some(config["cloud"]["properties"]["agent"].clone())
    }
    fn registry_key(&self, vm: &str) -> String {
        let server = self.fake.server(vm).unwrap_or_default();
        let key = server["metadata"]["registry_key"]
            .as_str()
            .or(server["name"].as_str());
        key.unwrap_or(vm).to_owned()
    }
    fn unknown_cid(&self, kind: &str) -> String {
        match kind {
            "stemcell" => "00000000-0000-4000-8000-00000000beef".into(),
            _ => "00000000-0000-4000-8000-000000000000".into(),
        }
    }
    fn secrets(&self) -> Vec<String> {
        vec![
            self.password.clone(),
            self.registry_password.clone(),
            MBUS_PASSWORD.into(),
            "blob-secret-9e2".into(),
        ]
    }
}
