//! Request handling: one entry point that records the call, applies faults,
//! checks the token, and dispatches by service and path.

use crate::faults::FaultAction;
use crate::state::{new_id, Kind, State, PROJECT_ID};
use crate::{Shared, DOMAIN, PROJECT, REGION, USERNAME};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;

/// Unwinds the connection's task: the client sees the connection close.
struct DropConnection;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(move |req: Request| {
        let shared = shared.clone();
        async move { handle(shared, req).await }
    })
}

pub fn reply(code: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

/// Nova/Cinder style error body.
pub fn fail(code: u16, message: &str) -> Response {
    let key = match code {
        400 => "badRequest",
        404 => "itemNotFound",
        409 => "conflictingRequest",
        413 => "overLimit",
        _ => "computeFault",
    };
    reply(code, json!({ key: {"message": message, "code": code} }))
}

async fn handle(shared: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let line = if query.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path}?{query}")
    };
    shared.state().calls.push(line.clone());

    let action = {
        let mut faults = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        let found = faults
            .iter_mut()
            .find_map(|f| f.take(method.as_str(), &line));
        faults.retain(|f| !f.spent());
        found
    };
    let mut after = None;
    match action {
        Some(FaultAction::Drop) => std::panic::resume_unwind(Box::new(DropConnection)),
        Some(FaultAction::Latency(d)) => tokio::time::sleep(d).await,
        Some(FaultAction::Status { code, retry_after }) => {
            let mut r = fail(code, "injected fault");
            if let Some(s) = retry_after {
                r.headers_mut().insert("Retry-After", HeaderValue::from(s));
            }
            return r;
        }
        Some(FaultAction::StatusAfter { code }) => after = Some(code),
        None => {}
    }

    let is_auth = path.starts_with("/identity/");
    if !is_auth {
        let token = req
            .headers()
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !shared.state().tokens.contains(&token) {
            return reply(
                401,
                json!({"error": {"code": 401, "message": "The request you have made requires authentication."}}),
            );
        }
    }
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = parse_query(&query);

    // The image upload streams; everything else is a small JSON body.
    let resp = if method == Method::PUT
        && segs.len() == 5
        && segs[0] == "image"
        && segs[4] == "file"
    {
        upload(&shared, segs[3], req.into_body()).await
    } else {
        let bytes = axum::body::to_bytes(req.into_body(), 16 << 20)
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut st = shared.state();
        match segs.as_slice() {
            ["identity", "v3", "auth", "tokens"] if method == Method::POST => {
                keystone(&shared.base, &mut st, &body)
            }
            ["compute"] | ["compute", ""] => reply(
                300,
                json!({"versions": [{"id": "v2.1", "status": "CURRENT", "version": "2.90", "min_version": "2.1"}]}),
            ),
            ["compute", "v2.1", rest @ ..] => {
                crate::routes_compute::nova(&mut st, &method, rest, &q, &body)
            }
            ["volume", "v3", _project, rest @ ..] => {
                crate::routes_storage::cinder(&mut st, &method, rest, &q, &body)
            }
            ["image", "v2", rest @ ..] => {
                crate::routes_storage::glance(&mut st, &method, rest, &body)
            }
            ["network", "v2.0", rest @ ..] => {
                crate::routes_network::neutron(&mut st, &method, rest, &q, &body)
            }
            _ => fail(404, &format!("no route {method} {path}")),
        }
    };
    match after {
        Some(code) => fail(code, "injected fault after the request ran"),
        None => resp,
    }
}

fn keystone(base: &str, st: &mut State, body: &Value) -> Response {
    let id = &body["auth"]["identity"];
    let ok = match id["methods"][0].as_str() {
        Some("password") => {
            let u = &id["password"]["user"];
            u["name"] == USERNAME
                && u["password"] == st.password.as_str()
                && (u["domain"]["name"] == DOMAIN || u["domain"]["id"] == "default")
        }
        Some("application_credential") => {
            let a = &id["application_credential"];
            a["id"] == st.app_credential.0.as_str() && a["secret"] == st.app_credential.1.as_str()
        }
        _ => false,
    };
    let scope = &body["auth"]["scope"]["project"];
    let scoped = scope.is_null() || scope["id"] == PROJECT_ID || scope["name"] == PROJECT;
    if !ok || !scoped {
        return reply(
            401,
            json!({"error": {"code": 401, "message": "The request you have made requires authentication."}}),
        );
    }
    let token = format!("gAAAAA{}", new_id().replace('-', ""));
    st.tokens.insert(token.clone());
    let ep = |kind: &str, url: String| {
        let endpoints: Vec<Value> = ["public", "internal", "admin"]
            .iter()
            .map(|i| json!({"interface": i, "region": REGION, "region_id": REGION, "url": url}))
            .collect();
        json!({"type": kind, "name": kind, "endpoints": endpoints})
    };
    let catalog = json!([
        ep("identity", format!("{base}/identity")),
        ep("compute", format!("{base}/compute/v2.1")),
        ep("volumev3", format!("{base}/volume/v3/{PROJECT_ID}")),
        ep("image", format!("{base}/image")),
        ep("network", format!("{base}/network")),
    ]);
    let mut r = reply(
        201,
        json!({"token": {"methods": ["password"], "expires_at": "2099-01-01T00:00:00Z",
        "project": {"id": PROJECT_ID, "name": PROJECT}, "catalog": catalog}}),
    );
    r.headers_mut().insert(
        "X-Subject-Token",
        HeaderValue::from_str(&token).expect("token"),
    );
    r
}

async fn upload(shared: &Shared, id: &str, body: Body) -> Response {
    {
        let mut st = shared.state();
        match st.images.get_mut(id) {
            None => return fail(404, "image not found"),
            Some(e) if e.body["status"] != "queued" => return fail(409, "image is not queued"),
            Some(e) => e.body["status"] = json!("saving"),
        }
    }
    let mut stream = body.into_data_stream();
    let mut count = 0u64;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => count += c.len() as u64,
            Err(_) => {
                let mut st = shared.state();
                if let Some(e) = st.images.get_mut(id) {
                    e.body["status"] = json!("queued");
                }
                return fail(400, "upload interrupted");
            }
        }
    }
    let mut st = shared.state();
    st.image_bytes.insert(id.to_owned(), count);
    if let Some(e) = st.images.get_mut(id) {
        e.body["size"] = json!(count);
    }
    st.transition(Kind::Image, id, "saving", Some("active"));
    StatusCode::NO_CONTENT.into_response()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn query<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

pub fn decode_user_data(s: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    String::from_utf8(raw).ok()
}
