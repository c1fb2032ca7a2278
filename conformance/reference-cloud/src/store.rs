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
//! chaos.json               ChaosShares for the load mode, until turned off
//! chaos.log                one byte per request while chaos is on (see ChaosDraw)
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

/// The load mode's random faults this cloud can act out: both happen
/// before the cloud acts (it has no answer to lose).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ChaosShares {
    pub throttle: f64,
    pub server_error: f64,
}

/// What one request drew, as logged in `chaos.log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChaosDraw {
    Served,
    Throttled,
    ServerError,
}

impl ChaosDraw {
    fn byte(self) -> u8 {
        match self {
            ChaosDraw::Served => b'.',
            ChaosDraw::Throttled => b't',
            ChaosDraw::ServerError => b'e',
        }
    }

    pub fn of(byte: u8) -> Option<ChaosDraw> {
        match byte {
            b'.' => Some(ChaosDraw::Served),
            b't' => Some(ChaosDraw::Throttled),
            b'e' => Some(ChaosDraw::ServerError),
            _ => None,
        }
    }

    /// `x` uniform in [0, 1).
    pub fn draw(shares: &ChaosShares, x: f64) -> ChaosDraw {
        if x < shares.throttle {
            ChaosDraw::Throttled
        } else if x < shares.throttle + shares.server_error {
            ChaosDraw::ServerError
        } else {
            ChaosDraw::Served
        }
    }
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
    fn chaos_file(&self) -> PathBuf {
        self.root.join("chaos.json")
    }
    fn chaos_log_file(&self) -> PathBuf {
        self.root.join("chaos.log")
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
        self.update_faults(|old| *old = f.clone())
    }
    /// Reads, changes and writes the faults under an exclusive lock: many
    /// CPI processes take one-shot faults at once, and each must be taken
    /// by exactly one of them.
    pub fn update_faults<R>(&self, change: impl FnOnce(&mut Faults) -> R) -> io::Result<R> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("faults.lock"))?;
        lock.lock()?;
        let mut faults = self.faults();
        let before = faults.clone();
        let answer = change(&mut faults);
        if faults != before {
            write_json(&self.faults_file(), &faults)?;
        }
        Ok(answer)
    }
    pub fn clear_faults(&self) {
        let _ = std::fs::remove_file(self.faults_file());
    }

    pub fn chaos(&self) -> Option<ChaosShares> {
        read_json(&self.chaos_file())
    }
    /// Turns chaos on (a fresh log) or off (the log kept for its counts).
    pub fn put_chaos(&self, shares: Option<&ChaosShares>) -> io::Result<()> {
        match shares {
            Some(c) => {
                std::fs::write(self.chaos_log_file(), b"")?;
                write_json(&self.chaos_file(), c)
            }
            None => match std::fs::remove_file(self.chaos_file()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }
    /// One byte appended per request: many CPI processes log at once, and
    /// a one-byte append is atomic.
    pub fn log_chaos(&self, draw: ChaosDraw) -> io::Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.chaos_log_file())?
            .write_all(&[draw.byte()])
    }
    pub fn chaos_log(&self) -> Vec<ChaosDraw> {
        std::fs::read(self.chaos_log_file())
            .unwrap_or_default()
            .into_iter()
            .filter_map(ChaosDraw::of)
            .collect()
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
