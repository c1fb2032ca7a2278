//! A fake SoftLayer REST API: a real HTTP server on 127.0.0.1 that keeps
//! state (guests, image templates, VLANs, iSCSI volumes, snapshots, orders),
//! answers in the REST API's shapes, and acts out faults. Use it in-process
//! ([`FakeSoftLayer::start`]), as the conformance environment
//! ([`start_environment`]) or standalone (`fake-softlayer --listen ADDR`).

pub mod api;
pub mod chaos;
mod environment;
pub mod faults;
pub mod query;
pub mod render;
pub mod server;
pub mod services;
pub mod state;
pub mod swift;
mod swift_http;

pub use environment::{cpi_config, decode_user_data, start_environment, SoftLayerEnvironment};
pub use faults::Action;
pub use state::Outcome;

use faults::Rule;
use server::Shared;
use state::State;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The credentials the fake accepts unless told otherwise.
pub const DEFAULT_USERNAME: &str = "fake-sl-user";
pub const DEFAULT_API_KEY: &str = "fake-sl-api-key-0123456789abcdef";

/// A running fake. Dropping it stops the server.
pub struct FakeSoftLayer {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeSoftLayer {
    /// Starts on an ephemeral loopback port with the default credentials.
    pub fn start() -> std::io::Result<FakeSoftLayer> {
        Self::start_on(
            "127.0.0.1:0".parse().expect("loopback"),
            DEFAULT_USERNAME,
            DEFAULT_API_KEY,
        )
    }

    /// Starts on `addr` (loopback only), on a thread with its own runtime.
    pub fn start_on(
        addr: SocketAddr,
        username: &str,
        api_key: &str,
    ) -> std::io::Result<FakeSoftLayer> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the fake listens on loopback only",
            ));
        }
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(State::new(username, api_key)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = server::router(state.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("fake-softlayer".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = rx => {}
                    }
                });
            })?;
        Ok(FakeSoftLayer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API endpoint to configure (`softlayer.api_endpoint`).
    pub fn endpoint(&self) -> String {
        format!("http://{}/rest/v3.1", self.addr)
    }

    /// Looks at or changes the state under its lock.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Polls of a new guest before it is ready (0 = at once).
    pub fn set_provisioning_polls(&self, polls: u32) {
        self.with_state(|s| s.provisioning_polls = polls);
    }

    pub fn set_provisioning_outcome(&self, outcome: Outcome) {
        self.with_state(|s| s.provisioning_outcome = outcome);
    }

    /// Polls of the account's volume list before a new volume shows.
    pub fn set_volume_polls(&self, polls: u32) {
        self.with_state(|s| s.volume_polls = polls);
    }

    /// Polls of an imported template before it is active (0 = at once),
    /// and how the import ends.
    pub fn set_import(&self, polls: u32, outcome: Outcome) {
        self.with_state(|s| {
            s.import_polls = polls;
            s.import_outcome = outcome;
        });
    }

    /// The object storage auth URL to configure (`softlayer.swift_endpoint`).
    pub fn swift_endpoint(&self) -> String {
        format!("http://{}/auth/v1.0", self.addr)
    }

    /// The object storage user name to configure (`softlayer.swift_username`).
    pub fn swift_username(&self) -> String {
        self.with_state(|s| s.swift.username.clone())
    }

    /// Everything in object storage: `swift:container/` and
    /// `swift:container/object`.
    pub fn swift_listing(&self) -> Vec<String> {
        self.with_state(|s| s.swift.listing())
    }

    /// The `n`th call (1-based) to `route` (`Service::method`, or any route
    /// for `None`) acts out `action`.
    pub fn fail_nth(&self, route: Option<&str>, n: u32, action: Action) {
        self.push(route, n.saturating_sub(1), 1, action);
    }

    /// The next `times` calls to `route` act out `action` (`u32::MAX`:
    /// until [`clear_faults`](Self::clear_faults)).
    pub fn fail_next(&self, route: Option<&str>, times: u32, action: Action) {
        self.push(route, 0, times, action);
    }

    fn push(&self, route: Option<&str>, skip: u32, times: u32, action: Action) {
        self.with_state(|s| {
            s.faults.rules.push(Rule {
                route: route.map(str::to_owned),
                skip,
                times,
                action,
            })
        });
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        self.with_state(|s| s.faults.latency = latency);
    }

    pub fn clear_faults(&self) {
        self.with_state(|s| s.faults.clear());
    }

    /// Turns random faults on or off (the load mode's chaos).
    pub fn set_chaos(&self, chaos: Option<harness::Chaos>) {
        self.with_state(|s| s.chaos = chaos.map(chaos::ChaosState::new));
    }

    /// What chaos counted since it was last turned on.
    pub fn chaos_counts(&self) -> harness::ChaosCounts {
        self.with_state(|s| {
            s.chaos
                .as_ref()
                .map(|c| c.counts.clone())
                .unwrap_or_default()
        })
    }

    /// API requests served since the last [`reset_served`](Self::reset_served).
    pub fn served(&self) -> Vec<(String, Duration)> {
        self.with_state(|s| s.served.clone())
    }

    pub fn reset_served(&self) {
        self.with_state(|s| s.served.clear());
    }

    /// Every call so far, as `Service::method`.
    pub fn calls(&self) -> Vec<String> {
        self.with_state(|s| s.calls.clone())
    }

    /// Calls so far to one route.
    pub fn count(&self, route: &str) -> usize {
        self.with_state(|s| s.calls.iter().filter(|c| *c == route).count())
    }

    /// The id of the seeded image template, and its global identifier.
    pub fn seeded_template(&self) -> (u64, String) {
        self.with_state(|s| {
            let t = s.templates.values().next().expect("a template is seeded");
            (t.id, t.global_identifier.clone())
        })
    }
}

impl Drop for FakeSoftLayer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
