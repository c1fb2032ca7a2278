//! The "cloud": a directory of JSON records, read by the CPI and by the
//! environment alike. Layout:
//!
//! ```text
//! stemcells/<cid>/...      unpacked image (a light image is made beforehand)
//! vms/<cid>/vm.json        VmRecord;  vms/<cid>/user_data.json
//! ports/<id>.json          one network port per VM ("other" in the inventory)
//! disks/<cid>/disk.json    DiskRecord; disks/<cid>/data/  the disk's files
//! snapshots/<cid>.json
//! faults.json              Faults the environment asks the cloud to act out
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct VmRecord {
    pub agent_id: String,
    pub stemcell: String,
    pub ip: String,
    pub port: String,
    /// `user_data` or `registry`: how this VM's agent gets its settings.
    pub delivery: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub reboots: u32,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct DiskRecord {
    pub size_mb: u64,
    #[serde(default)]
    pub attached_to: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// What the cloud is asked to do wrong, until cleared.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Faults {
    #[serde(default)]
    pub create_vm_after_vm_exists: bool,
    /// Requests left that answer a transient error.
    #[serde(default)]
    pub transient: u32,
    #[serde(default)]
    pub persistent: bool,
    #[serde(default)]
    pub latency_ms: u64,
    /// Requests left whose connection drops.
    #[serde(default)]
    pub drop: u32,
}

#[derive(Clone, Debug)]
pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn stemcell_dir(&self, cid: &str) -> PathBuf {
        self.root.join("stemcells").join(cid)
    }
    pub fn vm_dir(&self, cid: &str) -> PathBuf {
        self.root.join("vms").join(cid)
    }
    pub fn disk_dir(&self, cid: &str) -> PathBuf {
        self.root.join("disks").join(cid)
    }
    pub fn disk_data(&self, cid: &str) -> PathBuf {
        self.disk_dir(cid).join("data")
    }
    pub fn port_file(&self, id: &str) -> PathBuf {
        self.root.join("ports").join(format!("{id}.json"))
    }
    pub fn snapshot_file(&self, cid: &str) -> PathBuf {
        self.root.join("snapshots").join(format!("{cid}.json"))
    }
    fn faults_file(&self) -> PathBuf {
        self.root.join("faults.json")
    }

    /// Makes the top-level directories.
    pub fn init(&self) -> io::Result<()> {
        for d in ["stemcells", "vms", "ports", "disks", "snapshots"] {
            std::fs::create_dir_all(self.root.join(d))?;
        }
        Ok(())
    }

    pub fn vm(&self, cid: &str) -> Option<VmRecord> {
        read_json(&self.vm_dir(cid).join("vm.json"))
    }
    pub fn put_vm(&self, cid: &str, vm: &VmRecord) -> io::Result<()> {
        write_json(&self.vm_dir(cid).join("vm.json"), vm)
    }
    pub fn disk(&self, cid: &str) -> Option<DiskRecord> {
        read_json(&self.disk_dir(cid).join("disk.json"))
    }
    pub fn put_disk(&self, cid: &str, disk: &DiskRecord) -> io::Result<()> {
        write_json(&self.disk_dir(cid).join("disk.json"), disk)
    }

    /// Names in one of the top-level directories (`.json` dropped), sorted.
    pub fn list(&self, kind: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join(kind))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .trim_end_matches(".json")
                    .to_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// Disks recorded as attached to `vm`, sorted.
    pub fn disks_of(&self, vm: &str) -> Vec<String> {
        self.list("disks")
            .into_iter()
            .filter(|d| self.disk(d).and_then(|r| r.attached_to).as_deref() == Some(vm))
            .collect()
    }

    pub fn faults(&self) -> Faults {
        read_json(&self.faults_file()).unwrap_or_default()
    }
    pub fn put_faults(&self, f: &Faults) -> io::Result<()> {
        write_json(&self.faults_file(), f)
    }
    pub fn clear_faults(&self) {
        let _ = std::fs::remove_file(self.faults_file());
    }
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes through a temporary file and a rename, so a reader never sees half a record.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(value).map_err(io::Error::other)?,
    )?;
    std::fs::rename(tmp, path)
}
