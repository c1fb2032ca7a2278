//! A fake OpenStack on 127.0.0.1: Keystone v3 tokens with a catalog (Cinder
//! as `volumev3`), and the Nova, Cinder, Glance v2 and Neutron routes the
//! CPI uses, keeping state; transitional states settle on a later read;
//! faults (status on the Nth call, latency, dropped connection, 413/429 with
//! Retry-After, a state ending in error) on demand.

pub mod chaos;
mod environment;
pub mod faults;
mod routes;
mod routes_compute;
mod routes_network;
mod routes_storage;
pub mod state;

pub use environment::{cpi_config, start_environment, OpenStackEnvironment};
pub use faults::{FaultAction, FaultRule};
pub use state::{Kind, FLOATING_IP, LIGHT_IMAGE_ID, NET_ID, PROJECT_ID};

use serde_json::Value;
use state::State;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub const USERNAME: &str = "admin";
pub const PROJECT: &str = "bosh";
pub const DOMAIN: &str = "Default";
pub const REGION: &str = "RegionOne";

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub faults: Mutex<Vec<FaultRule>>,
    pub chaos: Mutex<Option<chaos::ChaosState>>,
    /// (route label, time to answer) of every request since `reset_served`.
    pub served: Mutex<Vec<(String, std::time::Duration)>>,
    pub base: String,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake; stops when dropped.
pub struct FakeOpenStack {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeOpenStack {
    /// Starts on an ephemeral loopback port, on its own thread and runtime.
    pub fn start(password: &str) -> std::io::Result<FakeOpenStack> {
        Self::start_on("127.0.0.1:0".parse().expect("address"), password)
    }

    pub fn start_on(addr: SocketAddr, password: &str) -> std::io::Result<FakeOpenStack> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::other(
                "the fake listens on loopback addresses only",
            ));
        }
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::seeded(password)),
            faults: Mutex::new(Vec::new()),
            chaos: Mutex::new(None),
            served: Mutex::new(Vec::new()),
            base: format!("http://{addr}"),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = routes::router(shared.clone());
        let thread = std::thread::Builder::new()
            .name("fake-openstack".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("listener");
                    // Stop at once on drop: open keep-alive connections do not hold it.
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
                rt.shutdown_background();
            })?;
        Ok(FakeOpenStack {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/identity/v3`.
    pub fn auth_url(&self) -> String {
        format!("{}/identity/v3", self.shared.base)
    }

    pub fn inject(&self, rule: FaultRule) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rule);
    }

    pub fn clear_faults(&self) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.shared.state().fail_next.clear();
    }

    /// Random faults on every request until turned off (`None`).
    pub fn set_chaos(&self, chaos: Option<harness::Chaos>) {
        *self.shared.chaos.lock().unwrap_or_else(|e| e.into_inner()) =
            chaos.map(chaos::ChaosState::new);
    }

    /// What chaos counted since it was last turned on.
    pub fn chaos_counts(&self) -> harness::ChaosCounts {
        self.shared
            .chaos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.counts.clone())
            .unwrap_or_default()
    }

    /// Every request since `reset_served`: a route label
    /// (`POST /compute/v2.1/servers/{id}/action`) and the fake's time.
    pub fn served(&self) -> Vec<(String, std::time::Duration)> {
        self.shared
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reset_served(&self) {
        self.shared
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Every token issued so far stops working (401), as after a Keystone
    /// restart with new keys or a revocation.
    pub fn revoke_tokens(&self) {
        self.shared.state().tokens.clear();
    }

    /// The lifetime of the tokens issued from now on (`expires_at`).
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.shared.state().token_lifetime = lifetime;
    }

    /// The next transition of `kind` (server boot, volume create/attach,
    /// snapshot, image upload) ends in an error status.
    pub fn fail_next(&self, kind: Kind) {
        self.shared.state().fail_next.insert(kind);
    }

    /// Reads before a transitional state settles (0: at once).
    pub fn set_transition_polls(&self, polls: u32) {
        self.shared.state().transition_polls = polls;
    }

    /// Time before a transitional state may settle, on top of the reads.
    pub fn set_transition_delay(&self, delay: std::time::Duration) {
        self.shared.state().transition_delay = delay;
    }

    /// Every request so far, as "METHOD /path?query".
    pub fn calls(&self) -> Vec<String> {
        self.shared.state().calls.clone()
    }

    pub fn servers(&self) -> Vec<Value> {
        self.shared
            .state()
            .servers
            .values()
            .map(|e| e.body.clone())
            .collect()
    }
    pub fn server(&self, id: &str) -> Option<Value> {
        self.shared.state().servers.get(id).map(|e| e.body.clone())
    }
    pub fn volumes(&self) -> Vec<Value> {
        self.shared
            .state()
            .volumes
            .values()
            .map(|e| e.body.clone())
            .collect()
    }
    pub fn volume(&self, id: &str) -> Option<Value> {
        self.shared.state().volumes.get(id).map(|e| e.body.clone())
    }
    pub fn snapshots(&self) -> Vec<Value> {
        self.shared
            .state()
            .snapshots
            .values()
            .map(|e| e.body.clone())
            .collect()
    }
    /// Images, the seeded light image excepted.
    pub fn images(&self) -> Vec<Value> {
        let s = self.shared.state();
        s.images
            .iter()
            .filter(|(k, _)| !s.seeded_images.contains(*k))
            .map(|(_, e)| e.body.clone())
            .collect()
    }
    pub fn image_bytes(&self, id: &str) -> Option<u64> {
        self.shared.state().image_bytes.get(id).copied()
    }
    pub fn ports(&self) -> Vec<Value> {
        self.shared.state().ports.values().cloned().collect()
    }
    pub fn floating_ips(&self) -> Vec<Value> {
        self.shared.state().floating_ips.values().cloned().collect()
    }
    /// A port on the seeded network holding `ip` (a VRRP address the
    /// operator made), as if made outside BOSH.
    pub fn add_port(&self, ip: &str) -> String {
        let id = state::new_id();
        let port = routes_network::port_body(&id, "vrrp", NET_ID, ip, "", "operator");
        self.shared.state().ports.insert(id.clone(), port);
        id
    }
    /// Octavia pool members (what the CPI added).
    pub fn pool_members(&self) -> Vec<Value> {
        self.shared.state().members.values().cloned().collect()
    }
    pub fn server_groups(&self) -> Vec<Value> {
        self.shared
            .state()
            .server_groups
            .values()
            .cloned()
            .collect()
    }
    /// The user data Nova keeps for the server, decoded.
    pub fn user_data(&self, server: &str) -> Option<String> {
        self.shared.state().user_data.get(server).cloned()
    }
    /// Removes a server behind the CPI's back.
    pub fn destroy_server(&self, id: &str) {
        self.shared.state().remove_now(Kind::Server, id);
    }
    pub fn write_file(&self, volume: &str, name: &str, data: &[u8]) {
        self.shared
            .state()
            .disk_files
            .entry(volume.to_owned())
            .or_default()
            .insert(name.to_owned(), data.to_vec());
    }
    pub fn read_file(&self, volume: &str, name: &str) -> Option<Vec<u8>> {
        self.shared
            .state()
            .disk_files
            .get(volume)?
            .get(name)
            .cloned()
    }
}

impl Drop for FakeOpenStack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
