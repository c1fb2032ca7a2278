//! The fake's state: containers (each a directory holding a copy of its
//! rootfs, with real bind mounts), processes awaiting their attaches, call
//! counts and faults.

use crate::chaos::ChaosState;
use crate::faults::Faults;
use crate::mounts;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Garden's `BindMount`, snake_case as on the wire.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct BindMount {
    #[serde(default)]
    pub src_path: String,
    #[serde(default)]
    pub dst_path: String,
    /// 0 = RO, 1 = RW.
    #[serde(default)]
    pub mode: u8,
    /// 0 = host, 1 = container.
    #[serde(default)]
    pub origin: u8,
}

/// Garden's `ContainerSpec` (the keys the warden CPI sends).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContainerSpec {
    #[serde(default)]
    pub handle: String,
    #[serde(default)]
    pub rootfs: String,
    #[serde(default)]
    pub image: ImageRef,
    #[serde(default)]
    pub bind_mounts: Option<Vec<BindMount>>,
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub properties: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub privileged: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ImageRef {
    #[serde(default)]
    pub uri: String,
}

#[derive(Debug)]
pub struct Container {
    pub handle: String,
    /// `root/<handle>`: the container's directory (`ContainerPath`).
    pub dir: PathBuf,
    pub ip: String,
    pub properties: BTreeMap<String, String>,
    pub bind_mounts: Vec<BindMount>,
    pub stopped: bool,
    pub agent_started: bool,
    /// How many long-running processes (agent starts) were started.
    pub agent_starts: u32,
    pub privileged: bool,
    /// The script (or path and args) of every process run, in order.
    pub commands: Vec<String>,
    pub processes: Vec<String>,
    pub mapped_ports: Vec<(u32, u32)>,
    /// Flips to true when the container is destroyed (ends long-running processes).
    pub gone: watch::Sender<bool>,
}

impl Container {
    /// The container's filesystem root.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn info(&self) -> Value {
        let ports: Vec<Value> = self
            .mapped_ports
            .iter()
            .map(|(h, c)| json!({"HostPort": h, "ContainerPort": c}))
            .collect();
        json!({
            "State": if self.stopped { "stopped" } else { "active" },
            "Events": [],
            "HostIP": host_ip(&self.ip),
            "ContainerIP": self.ip,
            "ExternalIP": "127.0.0.1",
            "ContainerPath": self.dir.to_string_lossy(),
            "ProcessIDs": self.processes,
            "Properties": self.properties,
            "MappedPorts": ports,
        })
    }
}

fn host_ip(ip: &str) -> String {
    match ip.rsplit_once('.') {
        Some((net, _)) => format!("{net}.1"),
        None => String::new(),
    }
}

/// A finished process's output, kept until its attaches collect it.
#[derive(Debug, Default)]
pub struct ProcessRecord {
    pub handle: String,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub long_running: bool,
    pub attached: u8,
}

pub struct State {
    pub root: PathBuf,
    pub containers: BTreeMap<String, Container>,
    pub processes: HashMap<String, ProcessRecord>,
    pub calls: BTreeMap<String, u64>,
    pub faults: Faults,
    /// Random faults for the load mode, while on.
    pub chaos: Option<ChaosState>,
    /// Every Garden request served since the last reset: its route label
    /// and the fake's own time for it.
    pub served: Vec<(String, Duration)>,
    next_ip: u32,
    next_port: u32,
    /// Handles and IPs of containers being built.
    reserved: Vec<(String, String)>,
}

const MAX_SERVED: usize = 1 << 20;

pub type Shared = Arc<std::sync::Mutex<State>>;

/// A Garden error as real Garden sends it.
#[derive(Debug)]
pub struct GardenError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub handle: String,
}

impl GardenError {
    pub fn not_found(handle: &str) -> Self {
        GardenError {
            status: 404,
            kind: "ContainerNotFoundError",
            message: format!("unknown handle: {handle}"),
            handle: handle.into(),
        }
    }
    pub fn server(message: impl Into<String>) -> Self {
        GardenError {
            status: 500,
            kind: "",
            message: message.into(),
            handle: String::new(),
        }
    }
    pub fn body(&self) -> Value {
        json!({"Type": self.kind, "Message": self.message, "Handle": self.handle, "ProcessID": "", "Binary": ""})
    }
}

impl State {
    pub fn new(root: PathBuf) -> Self {
        State {
            root,
            containers: BTreeMap::new(),
            processes: HashMap::new(),
            calls: BTreeMap::new(),
            faults: Faults::default(),
            chaos: None,
            served: Vec::new(),
            next_ip: 2,
            next_port: 61000,
            reserved: Vec::new(),
        }
    }

    pub fn container(&self, handle: &str) -> Result<&Container, GardenError> {
        self.containers
            .get(handle)
            .ok_or_else(|| GardenError::not_found(handle))
    }

    pub fn container_mut(&mut self, handle: &str) -> Result<&mut Container, GardenError> {
        self.containers
            .get_mut(handle)
            .ok_or_else(|| GardenError::not_found(handle))
    }

    /// Claims a handle and an IP for a container being built, so that two
    /// creates at once cannot take the same ones.
    fn reserve(&mut self, spec: &ContainerSpec) -> Result<(String, String), GardenError> {
        let handle = if spec.handle.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            spec.handle.clone()
        };
        if self.containers.contains_key(&handle) || self.reserved.iter().any(|(h, _)| h == &handle)
        {
            return Err(GardenError::server(format!(
                "Handle '{handle}' already in use"
            )));
        }
        let ip = match spec.network.split_once('/') {
            Some((ip, _)) if !ip.ends_with(".0") => ip.to_owned(),
            _ if !spec.network.is_empty() && !spec.network.contains('/') => spec.network.clone(),
            _ => {
                self.next_ip += 4;
                format!("10.254.{}.{}", self.next_ip / 256, self.next_ip % 256)
            }
        };
        if self.containers.values().any(|c| c.ip == ip)
            || self.reserved.iter().any(|(_, i)| i == &ip)
        {
            return Err(GardenError::server(format!(
                "the requested IP is already allocated: {ip}"
            )));
        }
        self.reserved.push((handle.clone(), ip.clone()));
        Ok((handle, ip))
    }

    fn unreserve(&mut self, handle: &str) {
        self.reserved.retain(|(h, _)| h != handle);
    }

    pub fn destroy(&mut self, handle: &str) -> Result<(), GardenError> {
        let c = self
            .containers
            .remove(handle)
            .ok_or_else(|| GardenError::not_found(handle))?;
        let _ = c.gone.send(true);
        self.processes.retain(|_, p| p.handle != handle);
        remove_dir(&c.dir);
        Ok(())
    }

    pub fn net_in(
        &mut self,
        handle: &str,
        host: u32,
        container: u32,
    ) -> Result<(u32, u32), GardenError> {
        let host = if host == 0 {
            self.next_port += 1;
            self.next_port
        } else {
            host
        };
        let c = self.container_mut(handle)?;
        let container = if container == 0 { host } else { container };
        c.mapped_ports.push((host, container));
        Ok((host, container))
    }

    pub fn count(&mut self, route: &str) {
        *self.calls.entry(route.to_owned()).or_default() += 1;
    }

    /// Records a served request (bounded: a runaway client cannot grow it
    /// without end).
    pub fn served(&mut self, label: &str, took: Duration) {
        if self.served.len() < MAX_SERVED {
            self.served.push((label.to_owned(), took));
        }
    }
}

/// Unmounts what is mounted in a container's directory, then removes it.
pub fn remove_dir(dir: &Path) {
    mounts::unmount_all(dir);
    if mounts::mounts_under(dir).is_empty() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Creates a container: its directory, a copy of the rootfs, its bind
/// mounts, built without holding the state lock (a real rootfs takes a
/// while to copy). Anything made is removed again when a step fails.
pub fn create(shared: &Shared, spec: ContainerSpec) -> Result<String, GardenError> {
    let (handle, ip) = shared.lock().unwrap().reserve(&spec)?;
    let dir = shared.lock().unwrap().root.join(&handle);
    let built = build(&dir, &spec);
    let mut state = shared.lock().unwrap();
    state.unreserve(&handle);
    built?;
    let (gone, _) = watch::channel(false);
    state.containers.insert(
        handle.clone(),
        Container {
            handle: handle.clone(),
            dir,
            ip,
            properties: spec.properties.unwrap_or_default(),
            bind_mounts: spec.bind_mounts.unwrap_or_default(),
            stopped: false,
            agent_started: false,
            agent_starts: 0,
            privileged: spec.privileged,
            commands: Vec::new(),
            processes: Vec::new(),
            mapped_ports: Vec::new(),
            gone,
        },
    );
    state.faults.created();
    Ok(handle)
}

fn build(dir: &Path, spec: &ContainerSpec) -> Result<(), GardenError> {
    let rootfs_src = if !spec.image.uri.is_empty() {
        &spec.image.uri
    } else {
        &spec.rootfs
    };
    let rootfs_src = rootfs_src
        .trim_start_matches("raw://")
        .trim_start_matches("file://");
    let made = (|| {
        let src = Path::new(rootfs_src);
        if rootfs_src.is_empty() || !(src.is_dir() || src.is_file()) {
            return Err(GardenError::server(format!(
                "rootfs '{rootfs_src}' is neither a directory nor a tarball"
            )));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| GardenError::server(format!("making container dir: {e}")))?;
        let rootfs = dir.join("rootfs");
        if src.is_dir() {
            mounts::tool(
                "cp",
                &["-a", &format!("{rootfs_src}/."), &rootfs.to_string_lossy()],
            )
            .map_err(|e| GardenError::server(format!("copying rootfs: {e}")))?;
        } else {
            // A tarball, as an image plugin (GrootFS) takes it.
            std::fs::create_dir_all(&rootfs)
                .map_err(|e| GardenError::server(format!("making rootfs: {e}")))?;
            let f = std::fs::File::open(src)
                .map_err(|e| GardenError::server(format!("opening rootfs tarball: {e}")))?;
            tar::Archive::new(std::io::BufReader::new(f))
                .unpack(&rootfs)
                .map_err(|e| GardenError::server(format!("unpacking rootfs tarball: {e}")))?;
        }
        for m in spec.bind_mounts.iter().flatten() {
            let src = if m.origin == 1 {
                crate::shell::inside(&rootfs, &m.src_path)
            } else {
                PathBuf::from(&m.src_path)
            };
            if !src.exists() {
                return Err(GardenError::server(format!(
                    "bind mount source {} does not exist",
                    m.src_path
                )));
            }
            let dst = crate::shell::inside(&rootfs, &m.dst_path);
            std::fs::create_dir_all(&dst)
                .map_err(|e| GardenError::server(format!("making mount point: {e}")))?;
            mounts::bind(&src, &dst, m.mode == 0).map_err(GardenError::server)?;
        }
        Ok(())
    })();
    if let Err(e) = made {
        remove_dir(dir);
        return Err(e);
    }
    Ok(())
}
