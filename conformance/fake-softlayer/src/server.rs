//! The HTTP side: parses `{prefix}/SoftLayer_Service[/id][/method].json`,
//! checks basic auth, acts out faults, dispatches, applies the object mask
//! and writes SoftLayer's answers and error bodies. `/_fake/...` is a small
//! control API for standalone use (faults, provisioning, inventory).

use crate::api::{ApiError, Call};
use crate::chaos::Draw;
use crate::faults::{Action, Rule};
use crate::query::{self, Mask};
use crate::services;
use crate::state::{Outcome, State};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Shared = Arc<Mutex<State>>;

pub fn router(state: Shared) -> axum::Router {
    use axum::routing::any;
    axum::Router::new()
        .route("/auth/v1.0", any(crate::swift_http::auth))
        .route("/auth/v1.0/", any(crate::swift_http::auth))
        .route(
            "/v1/{account}/{container}",
            any(crate::swift_http::container),
        )
        .route(
            "/v1/{account}/{container}/{*object}",
            any(crate::swift_http::object),
        )
        .fallback(handle)
        .with_state(state)
}

fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e.body())).into_response()
}

/// Service, id and method from the path; the HTTP verb names the method
/// when the path does not (GET getObject, POST createObject, PUT
/// editObject, DELETE deleteObject).
fn parse_path(path: &str, verb: &Method) -> Option<(String, Option<u64>, String)> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let start = segments.iter().position(|s| s.starts_with("SoftLayer_"))?;
    let rest: Vec<String> = segments[start..]
        .iter()
        .map(|s| s.strip_suffix(".json").unwrap_or(s).to_owned())
        .collect();
    let service = rest[0].clone();
    let mut id = None;
    let mut method = None;
    for seg in &rest[1..] {
        match seg.parse::<u64>() {
            Ok(n) if id.is_none() && method.is_none() => id = Some(n),
            _ => method = Some(seg.clone()),
        }
    }
    let method = method.unwrap_or_else(|| {
        match *verb {
            Method::POST => "createObject",
            Method::PUT => "editObject",
            Method::DELETE => "deleteObject",
            _ => "getObject",
        }
        .to_owned()
    });
    Some((service, id, method))
}

fn authorised(state: &State, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(b64) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let text = String::from_utf8_lossy(&raw);
    text.split_once(':') == Some((state.username.as_str(), state.api_key.as_str()))
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Shared>,
    verb: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path().starts_with("/_fake/") {
        return control(&shared, uri.path(), &body);
    }
    let Some((service, id, method)) = parse_path(uri.path(), &verb) else {
        return error(&ApiError {
            status: 404,
            code: "SoftLayer_Exception_Public".into(),
            message: "Not a SoftLayer API path.".into(),
        });
    };
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mask = match get("objectMask").map(|m| Mask::parse(&m)).transpose() {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => return error(&ApiError::public(format!("Invalid object mask: {e}"))),
    };
    let filter = match get("objectFilter")
        .map(|f| serde_json::from_str::<Value>(&f))
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return error(&ApiError::public(format!("Invalid object filter: {e}"))),
    };
    let params = if body.is_empty() {
        Vec::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            Err(e) => return error(&ApiError::public(format!("Invalid JSON body: {e}"))),
        }
    };
    let call = Call {
        service,
        method,
        id,
        params,
        filter,
    };

    let started = std::time::Instant::now();
    let route = call.route();
    let (fault, draw, latency) = {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        if !authorised(&st, &headers) {
            return error(&ApiError::unauthorized());
        }
        st.calls.push(route.clone());
        let fault = st.faults.take(&route);
        let draw = match fault {
            None => st.chaos.as_mut().and_then(|c| c.draw()),
            Some(_) => None,
        };
        (fault, draw, st.faults.latency)
    };
    let served = |shared: &Shared| {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        st.served.push((route.clone(), started.elapsed()));
    };
    if let Some(l) = latency {
        tokio::time::sleep(l).await;
    }
    let after = match (fault, draw) {
        // Unwinding out of the handler ends the connection task: the client
        // sees the connection closed with no answer. `resume_unwind` skips
        // the panic hook, so nothing is printed.
        (Some(Action::Drop), _) => {
            served(&shared);
            std::panic::resume_unwind(Box::new("connection dropped (injected)"))
        }
        (
            Some(Action::Error {
                status,
                code,
                message,
            }),
            _,
        ) => {
            served(&shared);
            return error(&ApiError {
                status,
                code,
                message,
            });
        }
        (_, Some(Draw::Throttle)) => {
            served(&shared);
            return error(&ApiError::rate_limited());
        }
        (_, Some(Draw::ServerError)) => {
            // A gateway's 500, not SoftLayer's error body.
            served(&shared);
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error (injected)",
            )
                .into_response();
        }
        (Some(Action::LoseAnswer), _) | (_, Some(Draw::LostAnswer)) => Some(Action::LoseAnswer),
        (Some(Action::CutBody), _) | (_, Some(Draw::DropMidBody)) => Some(Action::CutBody),
        (None, None) => None,
    };
    let response = {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        match services::dispatch(&mut st, &call) {
            Ok(reply) => Ok(query::project(&reply.value, reply.kind.relational(), &mask)),
            Err(e) => Err(e),
        }
    };
    served(&shared);
    match after {
        Some(Action::LoseAnswer) => std::panic::resume_unwind(Box::new("answer lost (injected)")),
        Some(Action::CutBody) => {
            let (status, body) = match &response {
                Ok(v) => (StatusCode::OK, v.clone()),
                Err(e) => (
                    StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    e.body(),
                ),
            };
            cut_body(status, &body)
        }
        _ => match response {
            Ok(v) => Json(v).into_response(),
            Err(e) => error(&e),
        },
    }
}

/// The answer's status, headers (with the whole length) and the first half
/// of its body; then the stream fails and the connection is dropped.
fn cut_body(status: StatusCode, body: &Value) -> Response {
    let bytes = body.to_string().into_bytes();
    let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
    // A pause after the first half, so that the head and that half are on
    // the wire before the connection goes.
    let stream = futures_util::stream::unfold(Some(half), |step| async move {
        match step {
            Some(half) => Some((Ok::<Bytes, std::io::Error>(half), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Err(std::io::Error::other("body cut (injected)")), None))
            }
        }
    });
    let mut resp = Response::new(axum::body::Body::from_stream(stream));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        "content-length",
        axum::http::HeaderValue::from(bytes.len() as u64),
    );
    resp
}

/// `POST /_fake/fault {"route", "skip", "times", "status", "code", "message" | "drop": true}`,
/// `POST /_fake/latency {"ms"}`, `POST /_fake/clear`,
/// `POST /_fake/provisioning {"polls", "outcome": "ready"|"never"|"fail", "volume_polls",
/// "import_polls", "import_outcome"}`,
/// `GET /_fake/inventory`.
fn control(shared: &Shared, path: &str, body: &[u8]) -> Response {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
    match path {
        "/_fake/fault" => {
            let action = if req["drop"].as_bool() == Some(true) {
                Action::Drop
            } else if req["lose_answer"].as_bool() == Some(true) {
                Action::LoseAnswer
            } else if req["cut_body"].as_bool() == Some(true) {
                Action::CutBody
            } else {
                Action::Error {
                    status: req["status"].as_u64().unwrap_or(503) as u16,
                    code: req["code"].as_str().unwrap_or("SoftLayer_Exception_Public").into(),
                    message: req["message"].as_str().unwrap_or("injected fault").into(),
                }
            };
            st.faults.rules.push(Rule {
                route: req["route"].as_str().map(str::to_owned),
                skip: req["skip"].as_u64().unwrap_or(0) as u32,
                times: req["times"].as_u64().map(|t| t as u32).unwrap_or(1),
                action,
            });
        }
        "/_fake/latency" => st.faults.latency = Some(Duration::from_millis(req["ms"].as_u64().unwrap_or(0))),
        "/_fake/clear" => st.faults.clear(),
        "/_fake/chaos" => match crate::chaos::from_json(&req) {
            Ok(c) if req.is_object() => st.chaos = Some(crate::chaos::ChaosState::new(c)),
            Ok(_) => st.chaos = None,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("bad chaos: {e}")).into_response(),
        },
        "/_fake/provisioning" => {
            if let Some(p) = req["polls"].as_u64() {
                st.provisioning_polls = p as u32;
            }
            if let Some(p) = req["volume_polls"].as_u64() {
                st.volume_polls = p as u32;
            }
            let outcome = |v: &Value| match v.as_str() {
                Some("never") => Outcome::NeverFinishes,
                Some("fail") => Outcome::Fails,
                _ => Outcome::Ready,
            };
            st.provisioning_outcome = outcome(&req["outcome"]);
            if let Some(p) = req["import_polls"].as_u64() {
                st.import_polls = p as u32;
            }
            st.import_outcome = outcome(&req["import_outcome"]);
        }
        "/_fake/inventory" => {
            return Json(json!({
                "guests": st.guests.keys().collect::<Vec<_>>(),
                "volumes": st.volumes.keys().collect::<Vec<_>>(),
                "snapshots": st.snapshots.keys().collect::<Vec<_>>(),
                "templates": st.templates.values().map(|t| json!({"id": t.id, "globalIdentifier": t.global_identifier})).collect::<Vec<_>>(),
                "objects": st.swift.listing(),
                "calls": st.calls.len(),
            }))
            .into_response()
        }
        _ => return (StatusCode::NOT_FOUND, "unknown control path").into_response(),
    }
    Json(json!({"ok": true})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rest_paths() {
        let p = |s, v| parse_path(s, &v);
        assert_eq!(
            p(
                "/rest/v3.1/SoftLayer_Virtual_Guest/12/getObject.json",
                Method::GET
            ),
            Some((
                "SoftLayer_Virtual_Guest".into(),
                Some(12),
                "getObject".into()
            ))
        );
        assert_eq!(
            p("/SoftLayer_Virtual_Guest.json", Method::POST),
            Some((
                "SoftLayer_Virtual_Guest".into(),
                None,
                "createObject".into()
            ))
        );
        assert_eq!(
            p("/SoftLayer_Virtual_Guest/12.json", Method::DELETE),
            Some((
                "SoftLayer_Virtual_Guest".into(),
                Some(12),
                "deleteObject".into()
            ))
        );
        assert_eq!(
            p("/SoftLayer_Account/getVirtualGuests.json", Method::GET),
            Some(("SoftLayer_Account".into(), None, "getVirtualGuests".into()))
        );
    }
}
