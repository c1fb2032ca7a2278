//! A fake BOSH registry, for the stemcell API v1 checks: the CPI PUTs a VM's
//! settings, the agent (here: the suite) GETs them, the CPI DELETEs them with
//! the VM. Basic auth; GET answers `{"settings": "<json string>", "status":
//! "ok"}` as the real registry does; bad credentials get 401.

use crate::environment::RegistryEndpoint;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Shared {
    settings: Mutex<BTreeMap<String, String>>,
    expected_auth: String,
}

/// The running registry; stops when dropped.
pub struct RegistryServer {
    endpoint: RegistryEndpoint,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RegistryServer {
    /// Starts on 127.0.0.1 with an ephemeral port and fresh credentials.
    pub fn start() -> Result<RegistryServer, String> {
        let username = "registry-admin".to_owned();
        let password = format!("reg-{}", uuid::Uuid::new_v4().simple());
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("registry: binding 127.0.0.1:0: {e}"))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| format!("registry: {e}"))?;
        let port = std_listener
            .local_addr()
            .map_err(|e| format!("registry: {e}"))?
            .port();
        let shared = Arc::new(Shared {
            settings: Mutex::default(),
            expected_auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            ),
        });
        let app = Router::new()
            .route(
                "/instances/{id}/settings",
                put(put_settings).get(get_settings).delete(delete_settings),
            )
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fake-registry".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(_) => return,
                };
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .map_err(|e| format!("registry: starting its thread: {e}"))?;
        Ok(RegistryServer {
            endpoint: RegistryEndpoint {
                url: format!("http://127.0.0.1:{port}"),
                host: "127.0.0.1".into(),
                port,
                username,
                password,
            },
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn endpoint(&self) -> &RegistryEndpoint {
        &self.endpoint
    }

    /// The settings stored for a VM, parsed.
    pub fn settings(&self, vm: &str) -> Option<Result<Value, String>> {
        let all = self
            .shared
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.get(vm).map(|s| {
            serde_json::from_str(s)
                .map_err(|e| format!("the registry holds settings that are not JSON: {e}"))
        })
    }

    /// The VM cids the registry holds settings for.
    pub fn instances(&self) -> Vec<String> {
        self.shared
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v == shared.expected_auth)
        .unwrap_or(false)
}

type Answer = (StatusCode, Json<Value>);

fn unauthorized() -> Answer {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"status": "access_denied"})),
    )
}

async fn put_settings(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Answer {
    if !authorized(&s, &headers) {
        return unauthorized();
    }
    s.settings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, body);
    (StatusCode::OK, Json(json!({"status": "ok"})))
}

async fn get_settings(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    if !authorized(&s, &headers) {
        return unauthorized();
    }
    match s
        .settings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
    {
        Some(settings) => (
            StatusCode::OK,
            Json(json!({"settings": settings, "status": "ok"})),
        ),
        None => (StatusCode::NOT_FOUND, Json(json!({"status": "not_found"}))),
    }
}

async fn delete_settings(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    if !authorized(&s, &headers) {
        return unauthorized();
    }
    s.settings
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    (StatusCode::OK, Json(json!({"status": "ok"})))
}
