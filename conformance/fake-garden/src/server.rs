//! Connections and routes: the Garden API as the warden CPI uses it, the
//! hijacked process stream, and the fake's own `/_fake/*` control routes.

use crate::faults::FaultAction;
use crate::http::{self, Io, Request};
use crate::shell;
use crate::state::{ContainerSpec, GardenError, Shared};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::BufReader;

/// Serves one connection until it closes (keep-alive), or hands it over to
/// a process stream.
pub async fn serve_conn<S: Io + 'static>(stream: S, state: Shared) {
    let mut conn = BufReader::new(stream);
    loop {
        let req = match http::read_request(&mut conn).await {
            Ok(Some(r)) => r,
            _ => return,
        };
        let route = route_name(&req);
        let fault = {
            let mut s = state.lock().unwrap();
            s.count(route);
            if route.starts_with("_fake") {
                None
            } else {
                s.faults.check(route)
            }
        };
        match fault {
            Some(FaultAction::Drop) => return,
            Some(FaultAction::LatencyMs(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Some(FaultAction::Status(code)) => {
                let e = GardenError {
                    status: code,
                    kind: "",
                    message: format!("injected fault: HTTP {code} on {route}"),
                    handle: String::new(),
                };
                if http::write_response(
                    conn.get_mut(),
                    code,
                    "application/json",
                    e.body().to_string().as_bytes(),
                )
                .await
                .is_err()
                {
                    return;
                }
                continue;
            }
            Some(FaultAction::Error { status, kind }) => {
                let body = json!({"Type": kind, "Message": format!("injected fault on {route}"), "Handle": "", "ProcessID": "", "Binary": ""});
                if http::write_response(
                    conn.get_mut(),
                    status,
                    "application/json",
                    body.to_string().as_bytes(),
                )
                .await
                .is_err()
                {
                    return;
                }
                continue;
            }
            None => {}
        }
        match route {
            "run" => return crate::processes::run_process(conn, req, state).await,
            "attach" => return crate::processes::attach(conn, req, state).await,
            _ => {}
        }
        let close = req.wants_close();
        let (status, ctype, body) = match handle(&req, &state) {
            Ok(Reply::Json(v)) => (200, "application/json", v.to_string().into_bytes()),
            Ok(Reply::Tar(b)) => (200, "application/x-tar", b),
            Err(e) => (
                e.status,
                "application/json",
                e.body().to_string().into_bytes(),
            ),
        };
        if http::write_response(conn.get_mut(), status, ctype, &body)
            .await
            .is_err()
            || close
        {
            return;
        }
    }
}

pub enum Reply {
    Json(Value),
    Tar(Vec<u8>),
}

/// The name faults and call counts use for a request.
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

fn handle(req: &Request, state: &Shared) -> Result<Reply, GardenError> {
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
