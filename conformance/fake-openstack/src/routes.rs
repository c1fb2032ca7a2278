//! Request handling: one entry point that records the call, applies faults,
//! checks the token, and dispatches by service and path.

use crate::chaos::Draw;
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
        413 | 429 => "overLimit",
        _ => "computeFault",
    };
    reply(code, json!({ key: {"message": message, "code": code} }))
}

async fn handle(shared: Arc<Shared>, req: Request) -> Response {
    let started = std::time::Instant::now();
    let label = route_label(req.method().as_str(), req.uri().path());
    let served = |shared: &Shared| {
        shared
            .served
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((label.clone(), started.elapsed()));
    };
    let resp = answer(&shared, req).await;
    match resp {
        Outcome::Answer(r) => {
            served(&shared);
            r
        }
        Outcome::Drop => {
            served(&shared);
            std::panic::resume_unwind(Box::new(DropConnection))
        }
        Outcome::Cut(r) => {
            let r = cut(r).await;
            served(&shared);
            match r {
                Some(r) => r,
                None => std::panic::resume_unwind(Box::new(DropConnection)),
            }
        }
    }
}

enum Outcome {
    Answer(Response),
    /// Close the connection without an answer.
    Drop,
    /// Send the head and half the body of this answer, then close.
    Cut(Response),
}

/// The answer with its body cut in half (the full length announced); None
/// when it has no body to cut (the connection is then closed outright).
async fn cut(resp: Response) -> Option<Response> {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20).await.ok()?;
    if bytes.len() < 2 {
        return None;
    }
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from(bytes.len()),
    );
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other("connection cut mid-body")),
    ];
    Some(Response::from_parts(
        parts,
        Body::from_stream(futures_util::stream::iter(chunks)),
    ))
}

/// `POST /compute/v2.1/servers/{id}/action`: ids (anything with a digit
/// that is not an API version) folded, for the per-route figures.
pub fn route_label(method: &str, path: &str) -> String {
    let segs: Vec<&str> = path
        .split('/')
        .map(|s| {
            let version =
                s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.');
            if !version && s.chars().any(|c| c.is_ascii_digit()) {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("{method} {}", segs.join("/"))
}

/// 429 as each service shapes it, with `Retry-After`.
fn throttled() -> Response {
    let mut r = reply(
        429,
        json!({"overLimit": {"code": 429, "message": "This request was rate-limited.", "retryAfter": "1"}}),
    );
    r.headers_mut()
        .insert("Retry-After", HeaderValue::from_static("1"));
    r
}

async fn answer(shared: &Shared, req: Request) -> Outcome {
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
    let draw = match action {
        Some(_) => None,
        None => shared
            .chaos
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|c| c.draw()),
    };
    let mut after = None;
    match action {
        Some(FaultAction::Drop) => return Outcome::Drop,
        Some(FaultAction::Latency(d)) => tokio::time::sleep(d).await,
        Some(FaultAction::Status { code, retry_after }) => {
            let mut r = fail(code, "injected fault");
            if let Some(s) = retry_after {
                r.headers_mut().insert("Retry-After", HeaderValue::from(s));
            }
            return Outcome::Answer(r);
        }
        Some(
            a @ (FaultAction::StatusAfter { .. } | FaultAction::DropAfter | FaultAction::CutBody),
        ) => after = Some(a),
        None => {}
    }
    match draw {
        Some(Draw::Throttle) => return Outcome::Answer(throttled()),
        Some(Draw::ServerError) => {
            return Outcome::Answer(fail(500, "chaos: server error before acting"))
        }
        Some(Draw::Lost500) => after = Some(FaultAction::StatusAfter { code: 500 }),
        Some(Draw::LostDrop) => after = Some(FaultAction::DropAfter),
        Some(Draw::DropMidBody) => after = Some(FaultAction::CutBody),
        None => {}
    }
    let resp = act(shared, req, &method, &path, &query).await;
    match after {
        Some(FaultAction::StatusAfter { code }) => {
            Outcome::Answer(fail(code, "injected fault after the request ran"))
        }
        Some(FaultAction::DropAfter) => Outcome::Drop,
        Some(FaultAction::CutBody) => Outcome::Cut(resp),
        _ => Outcome::Answer(resp),
    }
}

async fn act(shared: &Shared, req: Request, method: &Method, path: &str, query: &str) -> Response {
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
    let q = parse_query(query);

    // The image upload streams; everything else is a small JSON body.
    if *method == Method::PUT && segs.len() == 5 && segs[0] == "image" && segs[4] == "file" {
        return upload(shared, segs[3], req.into_body()).await;
    }
    let bytes = axum::body::to_bytes(req.into_body(), 16 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut st = shared.state();
    match segs.as_slice() {
        ["identity", "v3", "auth", "tokens"] if *method == Method::POST => {
            keystone(&shared.base, &mut st, &body)
        }
        ["compute"] | ["compute", ""] => reply(
            300,
            json!({"versions": [{"id": "v2.1", "status": "CURRENT", "version": "2.90", "min_version": "2.1"}]}),
        ),
        ["compute", "v2.1", rest @ ..] => {
            crate::routes_compute::nova(&mut st, method, rest, &q, &body)
        }
        ["volume", "v3", _project, rest @ ..] => {
            crate::routes_storage::cinder(&mut st, method, rest, &q, &body)
        }
        ["image", "v2", rest @ ..] => {
            crate::routes_storage::glance(&mut st, method, rest, &q, &body)
        }
        ["network", "v2.0", rest @ ..] => {
            crate::routes_network::neutron(&mut st, method, rest, &q, &body)
        }
        ["load-balancer", "v2", rest @ ..] => {
            crate::routes_network::octavia(&mut st, method, rest, &q, &body)
        }
        _ => fail(404, &format!("no route {method} {path}")),
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
    let expires_at = rfc3339(std::time::SystemTime::now() + st.token_lifetime);
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
        ep("load-balancer", format!("{base}/load-balancer")),
    ]);
    let mut r = reply(
        201,
        json!({"token": {"methods": ["password"], "expires_at": expires_at,
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

/// `2026-12-07T09:00:00.000000Z`, as Keystone writes `expires_at`.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_fold_ids_and_keep_versions() {
        assert_eq!(
            route_label("POST", "/compute/v2.1/servers/9f1c-22/action"),
            "POST /compute/v2.1/servers/{id}/action"
        );
        assert_eq!(
            route_label("GET", "/network/v2.0/ports"),
            "GET /network/v2.0/ports"
        );
    }

    #[test]
    fn keystone_times() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_868_800 + 3661);
        assert_eq!(rfc3339(t), "2000-03-01T01:01:01.000000Z");
    }
}
