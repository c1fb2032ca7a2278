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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// One raw HTTP/1.1 request; answers (status, body).
    fn http(
        reg: &RegistryServer,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        body: &str,
    ) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", reg.endpoint().port)).unwrap();
        let auth = auth
            .map(|(u, p)| {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                format!("Authorization: Basic {token}\r\n")
            })
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: registry\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[test]
    fn keeps_settings_behind_basic_auth() {
        let reg = RegistryServer::start().unwrap();
        let ep = reg.endpoint().clone();
        let good = Some((ep.username.as_str(), ep.password.as_str()));
        let path = "/instances/vm-1/settings";
        assert_eq!(
            http(&reg, "PUT", path, Some((&ep.username, "wrong")), "{}").0,
            401
        );
        assert_eq!(http(&reg, "GET", path, None, "").0, 401);
        assert_eq!(
            http(&reg, "PUT", path, good, r#"{"agent_id":"a-1"}"#).0,
            200
        );
        let (status, body) = http(&reg, "GET", path, good, "");
        assert_eq!(status, 200);
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            doc,
            json!({"settings": "{\"agent_id\":\"a-1\"}", "status": "ok"})
        );
        assert_eq!(
            reg.settings("vm-1").unwrap().unwrap(),
            json!({"agent_id": "a-1"})
        );
        assert_eq!(http(&reg, "DELETE", path, good, "").0, 200);
        assert_eq!(http(&reg, "GET", path, good, "").0, 404);
        assert!(reg.instances().is_empty());
    }
}
