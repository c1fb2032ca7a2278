//! Connections and routes: the Garden API as the warden CPI uses it, the
//! hijacked process stream, and the fake's own `/_fake/*` control routes.

use crate::chaos::Draw;
use crate::faults::FaultAction;
use crate::http::{self, Io, Request};
use crate::shell;
use crate::state::{ContainerSpec, GardenError, Shared};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::BufReader;

/// How a request's answer is cut short, after the fake acted (chaos).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    None,
    /// No answer at all: the connection is closed.
    Lost,
    /// The head and part of the body (or of the process stream), then closed.
    MidBody,
}

/// Serves one connection until it closes (keep-alive), or hands it over to
/// a process stream.
pub async fn serve_conn<S: Io + 'static>(stream: S, state: Shared) {
    let mut conn = BufReader::new(stream);
    loop {
        let req = match http::read_request(&mut conn).await {
            Ok(Some(r)) => r,
            _ => return,
        };
        let started = Instant::now();
        let route = route_name(&req);
        let control = route.starts_with("_fake");
        let (fault, draw) = {
            let mut s = state.lock().unwrap();
            s.count(route);
            if control {
                (None, None)
            } else {
                let fault = s.faults.check_request(route, &req.body);
                let draw = match fault {
                    None => s.chaos.as_mut().and_then(|c| c.draw()),
                    Some(_) => None,
                };
                (fault, draw)
            }
        };
        let served = |state: &Shared| {
            if !control {
                state
                    .lock()
                    .unwrap()
                    .served(route_label(route), started.elapsed());
            }
        };
        match fault {
            Some(FaultAction::Drop) => return served(&state),
            Some(FaultAction::LatencyMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Some(FaultAction::Status(code)) => {
                let ok = write_untyped(&mut conn, code, route).await;
                served(&state);
                if !ok {
                    return;
                }
                continue;
            }
            Some(FaultAction::Error { status, kind }) => {
                let body = json!({"Type": kind, "Message": format!("injected fault on {route}"), "Handle": "", "ProcessID": "", "Binary": ""});
                let ok = http::write_response(
                    conn.get_mut(),
                    status,
                    "application/json",
                    body.to_string().as_bytes(),
                )
                .await
                .is_ok();
                served(&state);
                if !ok {
                    return;
                }
                continue;
            }
            Some(FaultAction::LoseAnswer) | Some(FaultAction::CutMidBody) | None => {}
        }
        let cut = match (&fault, draw) {
            (Some(FaultAction::LoseAnswer), _) => Cut::Lost,
            (Some(FaultAction::CutMidBody), _) => Cut::MidBody,
            (_, d) => chaos_cut(d),
        };
        let cut = match (cut, draw) {
            (Cut::None, Some(Draw::Reset)) => return served(&state),
            (Cut::None, Some(d @ (Draw::Throttle | Draw::ServerError))) => {
                let code = if d == Draw::Throttle { 503 } else { 500 };
                let ok = write_untyped(&mut conn, code, route).await;
                served(&state);
                if !ok {
                    return;
                }
                continue;
            }
            (cut, _) => cut,
        };
        match route {
            "run" => {
                crate::processes::run_process(conn, req, state.clone(), cut).await;
                return served(&state);
            }
            "attach" => {
                crate::processes::attach(conn, req, state.clone(), cut).await;
                return served(&state);
            }
            _ => {}
        }
        let close = req.wants_close();
        // Creating a container copies its rootfs, stream-in unpacks a tar,
        // destroy unmounts and removes: blocking work, kept off the threads
        // that serve the other connections. The other routes only read or
        // write the in-memory state and are answered in place: a hop to the
        // blocking pool cost each of them more than its work.
        let answered = if touches_disk(route) {
            let st = state.clone();
            tokio::task::spawn_blocking(move || handle(&req, &st)).await
        } else {
            Ok(handle(&req, &state))
        };
        let (status, ctype, body) = match answered {
            Ok(Ok(Reply::Json(v))) => (200, "application/json", v.to_string().into_bytes()),
            Ok(Ok(Reply::Tar(b))) => (200, "application/x-tar", b),
            Ok(Err(e)) => (
                e.status,
                "application/json",
                e.body().to_string().into_bytes(),
            ),
            Err(e) => (
                500,
                "application/json",
                GardenError::server(format!("fake-garden: handler failed: {e}"))
                    .body()
                    .to_string()
                    .into_bytes(),
            ),
        };
        match cut {
            Cut::Lost => return served(&state),
            Cut::MidBody => {
                let _ = http::write_partial(conn.get_mut(), status, ctype, &body).await;
                return served(&state);
            }
            Cut::None => {}
        }
        let ok = http::write_response(conn.get_mut(), status, ctype, &body)
            .await
            .is_ok();
        served(&state);
        if !ok || close {
            return;
        }
    }
}

/// The cut a chaos draw makes after the fake acted.
fn chaos_cut(d: Option<Draw>) -> Cut {
    match d {
        Some(Draw::LostAnswer) => Cut::Lost,
        Some(Draw::DropMidBody) => Cut::MidBody,
        _ => Cut::None,
    }
}

/// An untyped Garden error (a transient failure to a client).
async fn write_untyped<S: Io>(conn: &mut BufReader<S>, code: u16, route: &str) -> bool {
    let e = GardenError {
        status: code,
        kind: "",
        message: format!("injected fault: HTTP {code} on {route}"),
        handle: String::new(),
    };
    http::write_response(
        conn.get_mut(),
        code,
        "application/json",
        e.body().to_string().as_bytes(),
    )
    .await
    .is_ok()
}

/// The route as the bench's breakdown names it (`garden:GET /containers/:handle/info`).
pub fn route_label(route: &str) -> &'static str {
    match route {
        "ping" => "garden:GET /ping",
        "capacity" => "garden:GET /capacity",
        "create" => "garden:POST /containers",
        "list" => "garden:GET /containers",
        "bulk_info" => "garden:GET /containers/bulk_info",
        "destroy" => "garden:DELETE /containers/:handle",
        "info" => "garden:GET /containers/:handle/info",
        "stop" => "garden:POST /containers/:handle/stop",
        "properties" => "garden:GET /containers/:handle/properties",
        "property_get" => "garden:GET /containers/:handle/properties/:key",
        "property_set" => "garden:PUT /containers/:handle/properties/:key",
        "property_remove" => "garden:DELETE /containers/:handle/properties/:key",
        "stream_in" => "garden:PUT /containers/:handle/files",
        "stream_out" => "garden:GET /containers/:handle/files",
        "net_in" => "garden:POST /containers/:handle/net/in",
        "run" => "garden:POST /containers/:handle/processes",
        "attach" => "garden:GET /containers/:handle/processes/:pid/attaches/:stream_id/:stream",
        _ => "garden:unknown",
    }
}

pub enum Reply {
    Json(Value),
    Tar(Vec<u8>),
}

/// The name faults and call counts use for a request.
/// The routes whose work is on the host's file system (or may wait on it).
fn touches_disk(route: &str) -> bool {
    matches!(
        route,
        "create" | "destroy" | "stream_in" | "stream_out" | "unknown"
    )
}

pub fn route_name(req: &Request) -> &'static str {
    let s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (req.method.as_str(), s.as_slice()) {
        (_, ["_fake", ..]) => "_fake",
        ("GET", ["ping"]) => "ping",
        ("GET", ["capacity"]) => "capacity",
        ("POST", ["containers"]) => "create",
        ("GET", ["containers"]) => "list",
        ("GET", ["containers", "bulk_info"]) => "bulk_info",
        ("DELETE", ["containers", _]) => "destroy",
        ("GET", ["containers", _, "info"]) => "info",
        ("POST", ["containers", _, "stop"]) => "stop",
        ("GET", ["containers", _, "properties"]) => "properties",
        ("GET", ["containers", _, "properties", _]) => "property_get",
        ("PUT", ["containers", _, "properties", _]) => "property_set",
        ("DELETE", ["containers", _, "properties", _]) => "property_remove",
        ("PUT", ["containers", _, "files"]) => "stream_in",
        ("GET", ["containers", _, "files"]) => "stream_out",
        ("POST", ["containers", _, "net", "in"]) => "net_in",
        ("POST", ["containers", _, "processes"]) => "run",
        ("GET", ["containers", _, "processes", _, "attaches", _, _]) => "attach",
        _ => "unknown",
    }
}

pub fn body_json(req: &Request) -> Result<Value, GardenError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| GardenError {
        status: 400,
        kind: "",
        message: format!("bad request body: {e}"),
        handle: String::new(),
    })
}

/// Go decodes JSON keys case-insensitively: so does the fake.
pub fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

pub fn handle(req: &Request, state: &Shared) -> Result<Reply, GardenError> {
    let seg = &req.segments;
    let h = seg.get(1).map(String::as_str).unwrap_or("");
    let route = route_name(req);
    match route {
        "_fake" => return crate::control::control(req, state),
        "ping" => return Ok(Reply::Json(json!({}))),
        "capacity" => {
            return Ok(Reply::Json(
                json!({"memory_in_bytes": 8u64 << 30, "disk_in_bytes": 64u64 << 30, "max_containers": 250}),
            ))
        }
        _ => {}
    }
    if route == "create" {
        let spec: ContainerSpec = serde_json::from_value(lower_keys(body_json(req)?))
            .map_err(|e| GardenError::server(format!("bad container spec: {e}")))?;
        return Ok(Reply::Json(
            json!({"Handle": crate::state::create(state, spec)?}),
        ));
    }
    let mut s = state.lock().unwrap();
    let reply = match route {
        "list" => {
            let wanted: Vec<&(String, String)> = req.query.iter().collect();
            let handles: Vec<&String> = s
                .containers
                .values()
                .filter(|c| wanted.iter().all(|(k, v)| c.properties.get(k) == Some(v)))
                .map(|c| &c.handle)
                .collect();
            json!({"Handles": handles})
        }
        "bulk_info" => {
            let mut out = serde_json::Map::new();
            for handle in req
                .query("handles")
                .unwrap_or("")
                .split(',')
                .filter(|x| !x.is_empty())
            {
                let entry = match s.container(handle) {
                    Ok(c) => json!({"Info": c.info(), "Err": null}),
                    Err(e) => json!({"Info": {}, "Err": e.body()}),
                };
                out.insert(handle.to_owned(), entry);
            }
            Value::Object(out)
        }
        "destroy" => {
            s.destroy(h)?;
            json!({})
        }
        "info" => s.container(h)?.info(),
        "stop" => {
            s.container_mut(h)?.stopped = true;
            json!({})
        }
        "properties" => json!(s.container(h)?.properties),
        "property_get" => {
            let key = &seg[3];
            match s.container(h)?.properties.get(key) {
                Some(v) => json!({"value": v}),
                None => {
                    return Err(GardenError::server(format!(
                        "property does not exist: {key}"
                    )))
                }
            }
        }
        "property_set" => {
            let v = body_json(req)?;
            let value = get_ci(&v, "value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            s.container_mut(h)?.properties.insert(seg[3].clone(), value);
            json!({})
        }
        "property_remove" => {
            s.container_mut(h)?.properties.remove(&seg[3]);
            json!({})
        }
        "net_in" => {
            let v = body_json(req)?;
            let n = |k| get_ci(&v, k).and_then(Value::as_u64).unwrap_or(0) as u32;
            let (hp, cp) = s.net_in(h, n("host_port"), n("container_port"))?;
            json!({"host_port": hp, "container_port": cp})
        }
        "stream_in" => {
            let root = s.container(h)?.rootfs();
            drop(s);
            let dest = shell::inside(&root, req.query("destination").unwrap_or("/"));
            std::fs::create_dir_all(&dest)
                .map_err(|e| GardenError::server(format!("making {}: {e}", dest.display())))?;
            let mut archive = tar::Archive::new(&req.body[..]);
            archive.set_overwrite(true);
            archive
                .unpack(&dest)
                .map_err(|e| GardenError::server(format!("stream in: {e}")))?;
            return Ok(Reply::Json(json!({})));
        }
        "stream_out" => {
            let root = s.container(h)?.rootfs();
            drop(s);
            let source = req.query("source").unwrap_or("");
            let path = shell::inside(&root, source);
            let mut b = tar::Builder::new(Vec::new());
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into());
            let added = if path.is_dir() {
                b.append_dir_all(&name, &path)
            } else {
                b.append_path_with_name(&path, &name)
            };
            added.map_err(|e| GardenError::server(format!("stream out {source}: {e}")))?;
            return Ok(Reply::Tar(
                b.into_inner()
                    .map_err(|e| GardenError::server(e.to_string()))?,
            ));
        }
        _ => {
            return Err(GardenError {
                status: 404,
                kind: "",
                message: format!("no route {} /{}", req.method, seg.join("/")),
                handle: String::new(),
            })
        }
    };
    Ok(Reply::Json(reply))
}

/// Real Garden's ContainerSpec keys are snake_case; Go would also accept
/// other cases, so keys are matched case-insensitively.
fn lower_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k = match k.to_ascii_lowercase().as_str() {
                        "bindmounts" => "bind_mounts".to_owned(),
                        "rootfspath" => "rootfs".to_owned(),
                        "srcpath" => "src_path".to_owned(),
                        "dstpath" => "dst_path".to_owned(),
                        other => other.to_owned(),
                    };
                    let v = if k == "properties" { v } else { lower_keys(v) };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(lower_keys).collect()),
        other => other,
    }
}
