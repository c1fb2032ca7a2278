//! The Swift store's HTTP side: `GET /auth/v1.0`, and under
//! `/v1/AUTH_<account>/`: containers (PUT, GET listing, DELETE) and objects
//! (PUT streamed to disk, chunked or not; HEAD; GET; DELETE). Every call is
//! counted as `Swift::<op>` and can be made to fail like any SoftLayer route.

use crate::faults::Action;
use crate::server::Shared;
use crate::swift::SwiftObject;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn status(code: StatusCode, text: &str) -> Response {
    (code, text.to_owned()).into_response()
}

/// Counts the call, checks the token (except for auth), waits out added
/// latency and acts out a fault; `Some` is the answer to give instead.
async fn admit(
    shared: &Shared,
    route: &str,
    headers: &HeaderMap,
    account: Option<&str>,
) -> Option<Response> {
    let (fault, latency) = {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(account) = account {
            let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok());
            let known = token.is_some_and(|t| st.swift.tokens.iter().any(|k| k == t));
            if !known || account != format!("AUTH_{}", st.swift.account) {
                return Some(status(StatusCode::UNAUTHORIZED, "Unauthorized"));
            }
        }
        st.calls.push(format!("Swift::{route}"));
        (
            st.faults.take(&format!("Swift::{route}")),
            st.faults.latency,
        )
    };
    if let Some(l) = latency {
        tokio::time::sleep(l).await;
    }
    match fault {
        // As in the REST side: unwinding closes the connection unanswered.
        // (Object storage acts out lost answers and cut bodies as drops.)
        Some(Action::Drop | Action::LoseAnswer | Action::CutBody) => {
            std::panic::resume_unwind(Box::new("connection dropped (injected)"))
        }
        Some(Action::Error {
            status: s, message, ..
        }) => Some(status(
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &message,
        )),
        None => None,
    }
}

/// `GET /auth/v1.0` with `X-Auth-User` and `X-Auth-Key` (or the
/// `X-Storage-User`/`X-Storage-Pass` spelling).
pub async fn auth(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(r) = admit(&shared, "auth", &headers, None).await {
        return r;
    }
    let h = |a: &str, b: &str| {
        headers
            .get(a)
            .or_else(|| headers.get(b))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (user, key) = (
        h("x-auth-user", "x-storage-user"),
        h("x-auth-key", "x-storage-pass"),
    );
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
    if user.as_deref() != Some(st.swift.username.as_str())
        || key.as_deref() != Some(st.api_key.as_str())
    {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let token = format!("AUTH_tk{}", uuid::Uuid::new_v4().simple());
    st.swift.tokens.push(token.clone());
    let url = format!("http://{host}/v1/AUTH_{}", st.swift.account);
    let mut resp = status(StatusCode::OK, "");
    for (k, v) in [
        ("x-auth-token", token.as_str()),
        ("x-storage-token", token.as_str()),
        ("x-storage-url", url.as_str()),
        ("x-auth-token-expires", "86400"),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn query_param(query: &Option<String>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// `/v1/{account}/{container}`: PUT creates (201, 202 if it exists), GET
/// lists (`?format=json`, `?prefix=`), DELETE removes an empty container.
pub async fn container(
    State(shared): State<Shared>,
    Path((account, container)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let route = match method {
        Method::PUT => "putContainer",
        Method::DELETE => "deleteContainer",
        Method::GET => "listContainer",
        _ => "headContainer",
    };
    if let Some(r) = admit(&shared, route, &headers, Some(&account)).await {
        return r;
    }
    let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
    let swift = &mut st.swift;
    match method {
        Method::PUT => {
            if swift.containers.contains_key(&container) {
                return status(StatusCode::ACCEPTED, "");
            }
            swift.containers.insert(container, Default::default());
            status(StatusCode::CREATED, "")
        }
        Method::DELETE => match swift.containers.get(&container) {
            None => status(StatusCode::NOT_FOUND, "Not Found"),
            Some(c) if !c.is_empty() => status(
                StatusCode::CONFLICT,
                "There was a conflict when trying to complete your request.",
            ),
            Some(_) => {
                swift.containers.remove(&container);
                status(StatusCode::NO_CONTENT, "")
            }
        },
        _ => {
            let Some(c) = swift.containers.get(&container) else {
                return status(StatusCode::NOT_FOUND, "Not Found");
            };
            let prefix = query_param(&query, "prefix").unwrap_or_default();
            let names: Vec<_> = c
                .iter()
                .filter(|(n, _)| n.starts_with(&prefix))
                .map(|(n, o)| json!({"name": n, "bytes": o.bytes, "content_type": "application/octet-stream"}))
                .collect();
            if method == Method::HEAD {
                return status(StatusCode::NO_CONTENT, "");
            }
            axum::Json(names).into_response()
        }
    }
}

/// `/v1/{account}/{container}/{object}`.
pub async fn object(
    State(shared): State<Shared>,
    Path((account, container, name)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = match method {
        Method::PUT => "putObject",
        Method::DELETE => "deleteObject",
        Method::HEAD => "headObject",
        _ => "getObject",
    };
    if let Some(r) = admit(&shared, route, &headers, Some(&account)).await {
        return r;
    }
    match method {
        Method::PUT => put_object(&shared, container, name, &headers, body).await,
        Method::DELETE => {
            let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
            if st.swift.remove(&container, &name) {
                status(StatusCode::NO_CONTENT, "")
            } else {
                status(StatusCode::NOT_FOUND, "Not Found")
            }
        }
        _ => {
            let st = shared.lock().unwrap_or_else(|e| e.into_inner());
            let (Some(o), Some(size)) = (
                st.swift.object(&container, &name),
                st.swift.size(&container, &name),
            ) else {
                return status(StatusCode::NOT_FOUND, "Not Found");
            };
            let mut resp = if method == Method::HEAD {
                status(StatusCode::OK, "")
            } else {
                // The fake reads the bytes back whole: only tests GET objects.
                let files: Vec<_> = match &o.manifest {
                    Some(m) => st
                        .swift
                        .segments(m)
                        .into_iter()
                        .map(|(_, s)| s.file.clone())
                        .collect(),
                    None => vec![o.file.clone()],
                };
                let mut data = Vec::new();
                for f in files {
                    data.extend(std::fs::read(f).unwrap_or_default());
                }
                (StatusCode::OK, data).into_response()
            };
            let h = resp.headers_mut();
            h.insert("content-length", HeaderValue::from(size));
            if let Some(m) = o
                .manifest
                .as_deref()
                .and_then(|m| HeaderValue::from_str(m).ok())
            {
                h.insert("x-object-manifest", m);
            }
            resp
        }
    }
}

/// Streams the body to a file, counting bytes; the object appears only
/// once the whole body has arrived (an aborted upload leaves nothing).
async fn put_object(
    shared: &Shared,
    container: String,
    name: String,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let file = {
        let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
        if !st.swift.containers.contains_key(&container) {
            return status(StatusCode::NOT_FOUND, "Not Found");
        }
        match st.swift.new_file() {
            Ok(f) => f,
            Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    };
    let manifest = headers
        .get("x-object-manifest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut out = match tokio::fs::File::create(&file).await {
        Ok(f) => f,
        Err(e) => return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut bytes = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let written = match chunk {
            Ok(c) => out.write_all(&c).await.map(|_| c.len() as u64),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        match written {
            Ok(n) => bytes += n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&file).await;
                return status(StatusCode::BAD_REQUEST, &format!("upload aborted: {e}"));
            }
        }
    }
    if let Err(e) = out.flush().await {
        let _ = tokio::fs::remove_file(&file).await;
        return status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = st.swift.containers.get_mut(&container) else {
        let _ = std::fs::remove_file(&file);
        return status(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Some(old) = c.insert(
        name,
        SwiftObject {
            bytes,
            manifest,
            file,
        },
    ) {
        let _ = std::fs::remove_file(old.file);
    }
    status(StatusCode::CREATED, "")
}
