//! A fake Garden server for warden CPIs: a real HTTP/1.1 server on
//! 127.0.0.1 (and optionally a unix socket) keeping containers as
//! directories with real bind mounts, acting out the commands a CPI runs,
//! with the hijacked process stream real Garden uses, fault injection, and
//! the conformance [`harness::Environment`] for cpi-warden.

pub mod chaos;
pub mod control;
pub mod environment;
pub mod faults;
pub mod http;
pub mod mounts;
pub mod processes;
pub mod server;
pub mod shell;
pub mod state;

pub use environment::start_environment;
pub use faults::{FaultAction, FaultRule};

use state::{Shared, State};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// A running fake. Dropping it stops the server and destroys every
/// container (unmounting their bind mounts).
pub struct FakeGarden {
    addr: SocketAddr,
    socket: Option<PathBuf>,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the fake holds, for tests and the conformance inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub handle: String,
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub ip: String,
    pub properties: std::collections::BTreeMap<String, String>,
    pub agent_started: bool,
    /// How many times a long-running process (the agent) was started.
    pub agent_starts: u32,
    pub stopped: bool,
    pub privileged: bool,
    /// (source on the host or in the container, destination, read-only).
    pub bind_mounts: Vec<(String, String, bool)>,
    /// (host port, container port) forwarded with net-in, in order.
    pub mapped_ports: Vec<(u32, u32)>,
    /// The script of every process run, in order.
    pub commands: Vec<String>,
}

impl FakeGarden {
    /// Starts on `listen` (use `127.0.0.1:0` for an ephemeral port), keeping
    /// containers under `root`; also on `socket` when given.
    pub fn start(listen: &str, root: &Path, socket: Option<&Path>) -> Result<FakeGarden, String> {
        let addr: SocketAddr = listen
            .parse()
            .map_err(|e| format!("--listen {listen}: {e}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("--listen {listen}: only loopback addresses"));
        }
        std::fs::create_dir_all(root).map_err(|e| format!("--root {}: {e}", root.display()))?;
        let state: Shared = Arc::new(Mutex::new(State::new(root.to_path_buf())));
        let std_listener =
            std::net::TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        let addr = std_listener.local_addr().map_err(|e| e.to_string())?;
        let unix = match socket {
            Some(p) => {
                let _ = std::fs::remove_file(p);
                let l = std::os::unix::net::UnixListener::bind(p)
                    .map_err(|e| format!("binding {}: {e}", p.display()))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                Some(l)
            }
            None => None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let st = state.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fake-garden".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let tcp = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let unix = unix.and_then(|l| tokio::net::UnixListener::from_std(l).ok());
                    let _ = ready_tx.send(Ok(()));
                    let st2 = st.clone();
                    let tcp_loop = async move {
                        while let Ok((s, _)) = tcp.accept().await {
                            let _ = s.set_nodelay(true);
                            tokio::spawn(server::serve_conn(s, st.clone()));
                        }
                    };
                    let unix_loop = async move {
                        match unix {
                            Some(l) => {
                                while let Ok((s, _)) = l.accept().await {
                                    tokio::spawn(server::serve_conn(s, st2.clone()));
                                }
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        _ = tcp_loop => {}
                        _ = unix_loop => {}
                        _ = stopped => {}
                    }
                });
                rt.shutdown_background();
            })
            .map_err(|e| e.to_string())?;
        ready_rx.recv().map_err(|e| e.to_string())??;
        Ok(FakeGarden {
            addr,
            socket: socket.map(Path::to_path_buf),
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    pub fn containers(&self) -> Vec<ContainerView> {
        let s = self.state.lock().unwrap();
        s.containers
            .values()
            .map(|c| ContainerView {
                handle: c.handle.clone(),
                dir: c.dir.clone(),
                rootfs: c.rootfs(),
                ip: c.ip.clone(),
                properties: c.properties.clone(),
                agent_started: c.agent_started,
                agent_starts: c.agent_starts,
                stopped: c.stopped,
                privileged: c.privileged,
                bind_mounts: c
                    .bind_mounts
                    .iter()
                    .map(|m| (m.src_path.clone(), m.dst_path.clone(), m.mode == 0))
                    .collect(),
                mapped_ports: c.mapped_ports.clone(),
                commands: c.commands.clone(),
            })
            .collect()
    }

    pub fn container(&self, handle: &str) -> Option<ContainerView> {
        self.containers().into_iter().find(|c| c.handle == handle)
    }

    /// Destroys a container behind the client's back.
    pub fn destroy(&self, handle: &str) -> bool {
        self.state.lock().unwrap().destroy(handle).is_ok()
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.state.lock().unwrap().faults.add(rule);
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Turns random faults on (`Some`) or off for every Garden request.
    pub fn set_chaos(&self, chaos: Option<harness::Chaos>) {
        self.state.lock().unwrap().chaos = chaos.map(chaos::ChaosState::new);
    }

    /// What chaos counted since it was last turned on.
    pub fn chaos_counts(&self) -> harness::ChaosCounts {
        self.state
            .lock()
            .unwrap()
            .chaos
            .as_ref()
            .map(|c| c.counts.clone())
            .unwrap_or_default()
    }

    /// The Garden requests served since the last `reset_served`.
    pub fn served(&self) -> Vec<(String, std::time::Duration)> {
        self.state.lock().unwrap().served.clone()
    }

    pub fn reset_served(&self) {
        self.state.lock().unwrap().served.clear();
    }

    /// How many times each route was called.
    pub fn calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.state.lock().unwrap().calls.clone()
    }
}

impl Drop for FakeGarden {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let handles: Vec<String> = s.containers.keys().cloned().collect();
        for h in handles {
            let _ = s.destroy(&h);
        }
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
    }
}
