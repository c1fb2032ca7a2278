//! The conformance environment for cpi-warden: temp dirs for stemcells,
//! disks, bind mounts and containers, the fake started in-process, and a
//! `cpi.json` shaped as the warden_cpi job renders it. Dropping it destroys
//! the containers and unmounts and frees everything under its directory.

use crate::faults::{FaultAction, FaultRule};
use crate::{mounts, FakeGarden};
use harness::{
    Chaos, ChaosCounts, CpiCommand, Environment, Fault, Inventory, RegistryEndpoint, Served,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const GUEST_EPHEMERAL: &str = "/var/vcap/data";
pub const GUEST_PERSISTENT: &str = "/warden-cpi-dev";
pub const SETTINGS_FILE: &str = "var/vcap/bosh/warden-cpi-agent-env.json";
pub const USER_DATA_FILE: &str = "var/vcap/bosh/warden-cpi-user-data.json";
/// Properties the CPI keeps for itself, not metadata.
const CPI_PROPERTY_PREFIX: &str = "warden-cpi.";
/// Where cpi-warden keeps the director's VM metadata: one JSON object.
pub const METADATA_PROPERTY: &str = "warden-cpi.metadata";

pub struct WardenEnvironment {
    fake: Option<FakeGarden>,
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    config_path: PathBuf,
    cpi_binary: PathBuf,
    secrets: Vec<String>,
    agent: Value,
}

/// Starts the fake Garden and writes the CPI config (settings in a file in
/// the container; the harness's registry for stemcell API v1 VMs).
pub fn start_environment(
    cpi_binary: &Path,
    registry: &RegistryEndpoint,
) -> Result<Box<dyn Environment>, String> {
    Ok(Box::new(WardenEnvironment::start(
        cpi_binary,
        Some(registry),
    )?))
}

impl WardenEnvironment {
    pub fn start(
        cpi_binary: &Path,
        registry: Option<&RegistryEndpoint>,
    ) -> Result<WardenEnvironment, String> {
        let dir = tempfile::Builder::new()
            .prefix("warden-env-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let root = dir.path().to_path_buf();
        for d in [
            "stemcells",
            "disks",
            "ephemeral",
            "persistent",
            "containers",
        ] {
            std::fs::create_dir_all(root.join(d)).map_err(|e| format!("making {d}: {e}"))?;
        }
        let fake = FakeGarden::start("127.0.0.1:0", &root.join("containers"), None)?;
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let mbus_password = format!("mbus-pw-{}", &tag[..12]);
        let blob_password = format!("blob-pw-{}", &tag[12..24]);
        let mbus = format!("https://mbus:{mbus_password}@0.0.0.0:6868");
        let blob_options = json!({"endpoint": "http://10.254.50.4:25251", "user": "agent", "password": blob_password});
        let mut secrets = vec![mbus_password, blob_password];
        let registry_block = match registry {
            Some(r) => {
                secrets.push(r.password.clone());
                json!({"Host": r.host, "Port": r.port, "Username": r.username, "Password": r.password})
            }
            None => json!({"Host": "", "Port": 0, "Username": "", "Password": ""}),
        };
        let config = json!({
            "Warden": {"ConnectNetwork": "tcp", "ConnectAddress": fake.addr().to_string()},
            "Actions": {
                "StemcellsDir": root.join("stemcells"),
                "DisksDir": root.join("disks"),
                "HostEphemeralBindMountsDir": root.join("ephemeral"),
                "HostPersistentBindMountsDir": root.join("persistent"),
                "GuestEphemeralBindMountPath": GUEST_EPHEMERAL,
                "GuestPersistentBindMountsDir": GUEST_PERSISTENT,
                "Agent": {"Mbus": mbus, "NTP": ["0.pool.ntp.org", "1.pool.ntp.org"],
                          "Blobstore": {"Type": "dav", "Options": blob_options}},
                "AgentEnvService": if registry.is_some() { "registry" } else { "file" },
                "Registry": registry_block,
            }
        });
        let config_path = root.join("cpi.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).unwrap_or_default(),
        )
        .map_err(|e| format!("writing cpi.json: {e}"))?;
        let agent = json!({"mbus": mbus, "ntp": ["0.pool.ntp.org", "1.pool.ntp.org"], "blobstore": {"provider": "dav", "options": blob_options}});
        Ok(WardenEnvironment {
            fake: Some(fake),
            dir: Some(dir),
            root,
            config_path,
            cpi_binary: cpi_binary.to_path_buf(),
            secrets,
            agent,
        })
    }

    pub fn fake(&self) -> &FakeGarden {
        self.fake.as_ref().expect("the fake runs until drop")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    fn rootfs(&self, vm: &str) -> Option<PathBuf> {
        self.fake().container(vm).map(|c| c.rootfs)
    }

    fn disk_file(&self, disk: &str) -> Option<PathBuf> {
        (!disk.is_empty() && !disk.contains('/')).then(|| self.root.join("disks").join(disk))
    }

    /// Where a disk's files are seen from inside the VM.
    fn on_disk(&self, vm: &str, disk: &str, name: &str) -> Result<PathBuf, String> {
        let rootfs = self
            .rootfs(vm)
            .ok_or_else(|| format!("no container {vm}"))?;
        let dir = crate::shell::inside(&rootfs, &format!("{GUEST_PERSISTENT}/{disk}"));
        if !mounts::mounts_under(&dir).iter().any(|m| m == &dir) {
            return Err(format!(
                "disk {disk} is not mounted in container {vm} at {GUEST_PERSISTENT}/{disk}"
            ));
        }
        Ok(dir.join(name))
    }

    /// `list(sub)` once it is empty, or after 10 s of waiting for it to be.
    fn drained_list(&self, sub: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = self.list(sub);
            if left.is_empty() || std::time::Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn list(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.join(sub))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Environment for WardenEnvironment {
    fn name(&self) -> &str {
        "cpi-warden"
    }

    fn cpi(&self) -> CpiCommand {
        CpiCommand {
            binary: self.cpi_binary.clone(),
            args: vec![format!("-configPath={}", self.config_path.display())],
            env: vec![],
        }
    }

    fn heavy_stemcell_properties(&self) -> Option<Value> {
        Some(json!({}))
    }

    fn light_stemcell_properties(&self) -> Option<Value> {
        None
    }

    fn vm_cloud_properties(&self) -> Value {
        json!({})
    }

    fn bad_vm_cloud_properties(&self) -> (Value, &'static str) {
        (json!({"ports": "not-a-list"}), "ports")
    }

    fn manual_network(&self, n: u8) -> Value {
        json!({"type": "manual", "ip": format!("10.244.0.{}", 10u16 + n as u16), "netmask": "255.255.255.0",
               "gateway": "10.244.0.1", "dns": ["10.244.0.2"], "default": ["dns", "gateway"], "cloud_properties": {}})
    }

    fn dynamic_network(&self) -> Value {
        json!({"type": "dynamic", "dns": ["10.244.0.2"], "default": ["dns", "gateway"], "cloud_properties": {}})
    }

    fn disk_cloud_properties(&self) -> Value {
        json!({})
    }

    fn inventory(&self) -> Inventory {
        let mut other: Vec<String> = mounts::mounts_under(&self.root)
            .into_iter()
            .map(|m| format!("mount:{}", m.display()))
            .collect();
        other.extend(
            mounts::loops_under(&self.root)
                .into_iter()
                .map(|(dev, f)| format!("loop:{dev}:{}", f.display())),
        );
        other.extend(
            self.list("ephemeral")
                .into_iter()
                .map(|d| format!("ephemeral-dir:{d}")),
        );
        other.extend(
            self.list("persistent")
                .into_iter()
                .map(|d| format!("persistent-dir:{d}")),
        );
        // A deleted stemcell is freed by a detached `rm` after the CPI has
        // answered: what is still there after a while was never freed.
        other.extend(
            self.drained_list("stemcells/.deleted")
                .into_iter()
                .map(|d| format!("deleted-stemcell-not-freed:{d}")),
        );
        Inventory {
            vms: self
                .fake()
                .containers()
                .into_iter()
                .map(|c| c.handle)
                .collect(),
            // `.templates` is the CPI's cache of formatted images, one per
            // disk size, kept on purpose; anything else there is a disk.
            disks: self
                .list("disks")
                .into_iter()
                .filter(|d| d != ".templates")
                .collect(),
            stemcells: self
                .list("stemcells")
                .into_iter()
                .filter(|s| s != ".deleted")
                .collect(),
            snapshots: vec![],
            other,
        }
    }

    fn vm_exists(&self, vm: &str) -> bool {
        self.fake().container(vm).is_some()
    }

    fn vm_ip(&self, vm: &str) -> Option<String> {
        self.fake().container(vm).map(|c| c.ip)
    }

    /// Container properties that are not the CPI's own, plus the director's
    /// metadata kept as one JSON property (`warden-cpi.metadata`).
    fn vm_metadata(&self, vm: &str) -> BTreeMap<String, String> {
        let Some(c) = self.fake().container(vm) else {
            return BTreeMap::new();
        };
        let mut out: BTreeMap<String, String> = c
            .properties
            .iter()
            .filter(|(k, _)| !k.starts_with(CPI_PROPERTY_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(Value::Object(m)) = c
            .properties
            .get(METADATA_PROPERTY)
            .and_then(|raw| serde_json::from_str::<Value>(raw).ok())
        {
            for (k, v) in m {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(k, v);
            }
        }
        out
    }

    fn agent_settings(&self, vm: &str) -> Option<Value> {
        let rootfs = self.rootfs(vm)?;
        let read = |p: &str| {
            std::fs::read(rootfs.join(p))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        };
        read(SETTINGS_FILE).or_else(|| read(USER_DATA_FILE))
    }

    fn destroy_vm_out_of_band(&self, vm: &str) {
        self.fake().destroy(vm);
    }

    fn disk_exists(&self, disk: &str) -> bool {
        self.disk_file(disk).is_some_and(|p| p.is_file())
    }

    fn disk_attached_to(&self, disk: &str) -> Option<String> {
        let root = self.root.join("persistent");
        mounts::mounts_under(&root).into_iter().find_map(|m| {
            let rel = m.strip_prefix(&root).ok()?.to_path_buf();
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            (parts.len() == 2 && parts[1] == disk).then(|| parts[0].clone())
        })
    }

    fn disk_size_mb(&self, disk: &str) -> Option<u64> {
        self.disk_file(disk)
            .and_then(|p| p.metadata().ok())
            .map(|m| m.len() >> 20)
    }

    fn disk_metadata(&self, disk: &str) -> BTreeMap<String, String> {
        self.disk_file(disk)
            .and_then(|_| {
                std::fs::read(
                    self.root
                        .join("disks")
                        .join(format!(".{disk}.metadata.json")),
                )
                .ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn write_on_disk(
        &self,
        vm: &str,
        disk: &str,
        name: &str,
        data: &[u8],
    ) -> Option<Result<(), String>> {
        Some(self.on_disk(vm, disk, name).and_then(|p| {
            std::fs::write(&p, data).map_err(|e| format!("writing {}: {e}", p.display()))
        }))
    }

    fn read_on_disk(&self, vm: &str, disk: &str, name: &str) -> Option<Result<Vec<u8>, String>> {
        Some(
            self.on_disk(vm, disk, name).and_then(|p| {
                std::fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))
            }),
        )
    }

    fn inject(&self, fault: Fault) -> bool {
        let rule = match fault {
            Fault::CreateVmAfterVmExists => FaultRule::new(
                &["stream_in", "run"],
                FaultAction::Error {
                    status: 500,
                    kind: "InjectedError".into(),
                },
            )
            .after_create()
            .times(1),
            Fault::Transient { times } => {
                FaultRule::new(&[], FaultAction::Status(503)).times(times)
            }
            Fault::Persistent => FaultRule::new(&[], FaultAction::Status(500)),
            Fault::Latency(d) => FaultRule::new(&[], FaultAction::latency(d)),
            Fault::DropConnection => FaultRule::new(&[], FaultAction::Drop).times(1),
        };
        self.fake().add_fault(rule);
        true
    }

    fn clear_faults(&self) {
        self.fake().clear_faults();
    }

    /// Every Garden request draws: 503 or a reset connection (throttle), a
    /// 500 (server error), the answer lost or cut mid-body (mid process
    /// stream for a run) after the fake acted.
    fn chaos(&self, chaos: Option<Chaos>) -> bool {
        self.fake().set_chaos(chaos);
        true
    }

    fn chaos_counts(&self) -> ChaosCounts {
        self.fake().chaos_counts()
    }

    /// The fake serves any number of CPI processes at once; the CPI locks
    /// what they share on the host (a disk's file while it works on it).
    fn concurrent(&self) -> bool {
        true
    }

    fn served(&self) -> Option<Served> {
        Some(Served {
            requests: self.fake().served(),
        })
    }

    fn reset_served(&self) {
        self.fake().reset_served();
    }

    fn secrets(&self) -> Vec<String> {
        self.secrets.clone()
    }

    fn agent_config(&self) -> Option<Value> {
        Some(self.agent.clone())
    }

    fn unknown_cid(&self, _kind: &str) -> String {
        "00000000-0000-4000-8000-000000000000".into()
    }

    fn heavy_stemcell_image(&self) -> Vec<(String, Vec<u8>)> {
        rootfs_members()
    }
}

/// A tiny root filesystem with the paths the CPI and agent start touch.
pub fn rootfs_members() -> Vec<(String, Vec<u8>)> {
    vec![
        ("tmp/.keep".into(), vec![]),
        ("etc/hostname".into(), b"localhost\n".to_vec()),
        (
            "var/vcap/bosh/bin/sync-time".into(),
            b"#!/bin/bash\nchronyc waitsync\n".to_vec(),
        ),
        ("var/vcap/data/.keep".into(), vec![]),
        (
            "usr/sbin/runsvdir-start".into(),
            b"#!/bin/bash\nexec runsvdir -P /etc/service\n".to_vec(),
        ),
    ]
}

impl Drop for WardenEnvironment {
    fn drop(&mut self) {
        // Containers first (their bind mounts), then whatever the CPI left
        // mounted on the host side, then loop devices, then the files.
        drop(self.fake.take());
        mounts::unmount_all(&self.root);
        for (dev, _) in mounts::loops_under(&self.root) {
            let _ = mounts::tool("losetup", &["-d", &dev]);
        }
        if mounts::mounts_under(&self.root).is_empty() {
            drop(self.dir.take());
        } else if let Some(d) = self.dir.take() {
            // Never delete through a mount: leave the directory for inspection.
            let _ = d.keep();
        }
    }
}
