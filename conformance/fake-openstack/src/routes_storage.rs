//! Cinder v3 (volumes, extend, metadata, snapshots) and Glance v2 images.

use crate::routes::{fail, query, reply};
use crate::state::{new_id, Entry, Kind, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub fn cinder(
    st: &mut State,
    m: &Method,
    rest: &[&str],
    q: &[(String, String)],
    body: &Value,
) -> Response {
    match (m.as_str(), rest) {
        ("POST", ["volumes"]) => {
            let v = &body["volume"];
            let Some(size) = v["size"].as_u64().filter(|s| *s > 0) else {
                return fail(400, "size must be a positive integer");
            };
            let id = new_id();
            let vol = json!({"id": id, "name": v["name"], "size": size, "status": "creating",
                "availability_zone": v["availability_zone"].as_str().unwrap_or("nova"),
                "volume_type": v["volume_type"].as_str().unwrap_or("standard"), "attachments": [], "metadata": {}});
            st.volumes.insert(
                id.clone(),
                Entry {
                    body: vol.clone(),
                    pending: None,
                },
            );
            st.transition(Kind::Volume, &id, "creating", Some("available"));
            reply(202, json!({ "volume": vol }))
        }
        ("GET", ["volumes", "detail"]) => {
            let vols: Vec<Value> = st
                .volumes
                .values()
                .map(|e| e.body.clone())
                .filter(|v| query(q, "name").is_none_or(|n| v["name"] == n))
                .collect();
            reply(200, json!({ "volumes": vols }))
        }
        ("GET", ["volumes", id]) => match st.read(Kind::Volume, id) {
            Some(v) => reply(200, json!({ "volume": v })),
            None => fail(404, &format!("Volume {id} could not be found.")),
        },
        ("DELETE", ["volumes", id]) => {
            match st
                .volumes
                .get(*id)
                .map(|e| e.body["status"].as_str().unwrap_or("").to_owned())
            {
                None => return fail(404, "Volume could not be found."),
                Some(s) if s != "available" && s != "error" => {
                    return fail(
                        400,
                        "Invalid volume: Volume status must be available or error",
                    )
                }
                _ => {}
            }
            st.transition(Kind::Volume, id, "deleting", None);
            StatusCode::ACCEPTED.into_response()
        }
        ("POST", ["volumes", id, "action"]) => {
            let Some(new) = body["os-extend"]["new_size"].as_u64() else {
                return fail(400, "unsupported action");
            };
            match st.volumes.get_mut(*id) {
                None => return fail(404, "Volume could not be found."),
                Some(e) if e.body["status"] != "available" => {
                    return fail(400, "Volume status must be available to extend")
                }
                Some(e) if e.body["size"].as_u64().unwrap_or(0) >= new => {
                    return fail(400, "New size must be greater")
                }
                Some(e) => e.body["size"] = json!(new),
            }
            st.transition(Kind::Volume, id, "extending", Some("available"));
            StatusCode::ACCEPTED.into_response()
        }
        ("POST", ["volumes", id, "metadata"]) | ("POST", ["snapshots", id, "metadata"]) => {
            let map = if rest[0] == "volumes" {
                &mut st.volumes
            } else {
                &mut st.snapshots
            };
            match map.get_mut(*id) {
                Some(e) => {
                    if let (Some(meta), Some(new)) = (
                        e.body["metadata"].as_object_mut(),
                        body["metadata"].as_object(),
                    ) {
                        meta.extend(new.clone());
                    }
                    reply(200, json!({"metadata": e.body["metadata"]}))
                }
                None => fail(404, "could not be found"),
            }
        }
        ("POST", ["snapshots"]) => {
            let s = &body["snapshot"];
            let vol = s["volume_id"].as_str().unwrap_or("");
            if !st.volumes.contains_key(vol) {
                return fail(404, &format!("Volume {vol} could not be found."));
            }
            let id = new_id();
            let snap = json!({"id": id, "name": s["name"], "description": s["description"], "volume_id": vol,
                "status": "creating", "size": st.volumes[vol].body["size"],
                "metadata": s["metadata"].as_object().cloned().unwrap_or_default()});
            st.snapshots.insert(
                id.clone(),
                Entry {
                    body: snap.clone(),
                    pending: None,
                },
            );
            st.transition(Kind::Snapshot, &id, "creating", Some("available"));
            reply(202, json!({ "snapshot": snap }))
        }
        ("GET", ["snapshots", "detail"]) => {
            let snaps: Vec<Value> = st
                .snapshots
                .values()
                .map(|e| e.body.clone())
                .filter(|v| query(q, "name").is_none_or(|n| v["name"] == n))
                .collect();
            reply(200, json!({ "snapshots": snaps }))
        }
        ("GET", ["snapshots", id]) => match st.read(Kind::Snapshot, id) {
            Some(s) => reply(200, json!({ "snapshot": s })),
            None => fail(404, &format!("Snapshot {id} could not be found.")),
        },
        ("DELETE", ["snapshots", id]) => {
            if !st.snapshots.contains_key(*id) {
                return fail(404, "Snapshot could not be found.");
            }
            st.transition(Kind::Snapshot, id, "deleting", None);
            StatusCode::ACCEPTED.into_response()
        }
        _ => fail(404, "no such volume route"),
    }
}

pub fn glance(
    st: &mut State,
    m: &Method,
    rest: &[&str],
    q: &[(String, String)],
    body: &Value,
) -> Response {
    match (m.as_str(), rest) {
        ("GET", ["images"]) => {
            // Glance filters on any property given in the query.
            let images: Vec<Value> = st
                .images
                .values()
                .map(|e| e.body.clone())
                .filter(|i| {
                    q.iter()
                        .filter(|(k, _)| k != "limit" && k != "marker")
                        .all(|(k, v)| i[k.as_str()].as_str() == Some(v.as_str()))
                })
                .collect();
            reply(200, json!({ "images": images }))
        }
        ("POST", ["images"]) => {
            let id = new_id();
            let mut img = body.as_object().cloned().unwrap_or_default();
            img.insert("id".into(), json!(id));
            img.insert("status".into(), json!("queued"));
            let img = Value::Object(img);
            st.images.insert(
                id,
                Entry {
                    body: img.clone(),
                    pending: None,
                },
            );
            reply(201, img)
        }
        ("GET", ["images", id]) => match st.read(Kind::Image, id) {
            Some(i) => reply(200, i),
            None => fail(404, "image not found"),
        },
        ("DELETE", ["images", id]) => {
            if st.images.remove(*id).is_none() {
                return fail(404, "image not found");
            }
            st.image_bytes.remove(*id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => fail(404, "no such image route"),
    }
}
