//! Nova: flavors, key pairs, servers, reboot, metadata, volume attachments.

use crate::routes::{decode_user_data, fail, query, reply};
use crate::state::{new_id, Entry, Kind, State, NET_ID};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub fn nova(
    st: &mut State,
    m: &Method,
    rest: &[&str],
    q: &[(String, String)],
    body: &Value,
) -> Response {
    match (m.as_str(), rest) {
        ("GET", ["flavors", "detail"]) => reply(200, json!({"flavors": st.flavors})),
        ("GET", ["flavors", id]) => match st.flavors.iter().find(|f| f["id"] == *id) {
            Some(f) => reply(200, json!({"flavor": f})),
            None => fail(404, "Flavor could not be found."),
        },
        ("GET", ["os-keypairs"]) => reply(
            200,
            json!({"keypairs": st.keypairs.iter().map(|k| json!({"keypair": {"name": k}})).collect::<Vec<_>>()}),
        ),
        ("GET", ["os-keypairs", name]) => match st.keypairs.iter().find(|k| k == name) {
            Some(k) => reply(200, json!({"keypair": {"name": k}})),
            None => fail(404, &format!("Keypair {name} not found.")),
        },
        ("POST", ["servers"]) => create_server(st, body),
        ("GET", ["os-server-groups"]) => reply(
            200,
            json!({"server_groups": st.server_groups.values().cloned().collect::<Vec<_>>()}),
        ),
        ("POST", ["os-server-groups"]) => {
            let g = &body["server_group"];
            let Some(name) = g["name"].as_str().filter(|n| !n.is_empty()) else {
                return fail(400, "server_group.name is required");
            };
            let policies = match (&g["policies"], &g["policy"]) {
                (Value::Array(p), _) => p.clone(),
                (_, Value::String(p)) => vec![json!(p)],
                _ => return fail(400, "server_group.policies is required"),
            };
            let id = new_id();
            let group = json!({"id": id, "name": name, "policies": policies, "members": []});
            st.server_groups.insert(id, group.clone());
            reply(200, json!({ "server_group": group }))
        }
        ("DELETE", ["os-server-groups", id]) => match st.server_groups.remove(*id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => fail(404, &format!("Server group {id} could not be found.")),
        },
        ("GET", ["servers", "detail"]) => {
            let name = query(q, "name")
                .map(|n| n.trim_start_matches('^').trim_end_matches('$').to_owned());
            let ids: Vec<String> = st.servers.keys().cloned().collect();
            let servers: Vec<Value> = ids
                .iter()
                .filter_map(|id| st.servers.get(id).map(|e| e.body.clone()))
                .filter(|s| name.as_deref().is_none_or(|n| s["name"] == n))
                .collect();
            reply(200, json!({ "servers": servers }))
        }
        ("GET", ["servers", id]) => match st.read(Kind::Server, id) {
            Some(s) => reply(200, json!({ "server": s })),
            None => fail(404, &format!("Instance {id} could not be found.")),
        },
        ("PUT", ["servers", id]) => match st.servers.get_mut(*id) {
            Some(e) => {
                if let Some(n) = body["server"]["name"].as_str() {
                    e.body["name"] = json!(n);
                }
                reply(200, json!({"server": e.body}))
            }
            None => fail(404, "Instance could not be found."),
        },
        ("DELETE", ["servers", id]) => {
            let Some(now) = st
                .servers
                .get(*id)
                .map(|e| e.body["status"].as_str().unwrap_or("ACTIVE").to_owned())
            else {
                return fail(404, "Instance could not be found.");
            };
            st.transition(Kind::Server, id, &now, None);
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", ["servers", id, "action"]) => {
            let Some(e) = st.servers.get(*id) else {
                return fail(404, "Instance could not be found.");
            };
            let Some(kind) = body["reboot"]["type"].as_str() else {
                return fail(400, "unsupported action");
            };
            if kind == "SOFT" && e.body["status"] != "ACTIVE" {
                return fail(
                    409,
                    "Cannot 'reboot' instance while it is in vm_state error",
                );
            }
            let now = if kind == "HARD" {
                "HARD_REBOOT"
            } else {
                "REBOOT"
            };
            st.transition(Kind::Server, id, now, Some("ACTIVE"));
            StatusCode::ACCEPTED.into_response()
        }
        ("POST", ["servers", id, "metadata"]) => match st.servers.get_mut(*id) {
            Some(e) => {
                if let (Some(meta), Some(new)) = (
                    e.body["metadata"].as_object_mut(),
                    body["metadata"].as_object(),
                ) {
                    meta.extend(new.clone());
                }
                reply(200, json!({"metadata": e.body["metadata"]}))
            }
            None => fail(404, "Instance could not be found."),
        },
        ("GET", ["servers", id, "metadata", key]) => match st
            .servers
            .get(*id)
            .map(|e| e.body["metadata"][*key].clone())
        {
            Some(v) if !v.is_null() => reply(200, json!({"meta": {*key: v}})),
            _ => fail(404, "Metadata item was not found"),
        },
        ("GET", ["servers", id, "os-volume_attachments"]) => {
            if !st.servers.contains_key(*id) {
                return fail(404, "Instance could not be found.");
            }
            reply(200, json!({"volumeAttachments": attachments_of(st, id)}))
        }
        ("POST", ["servers", id, "os-volume_attachments"]) => attach(st, id, body),
        ("DELETE", ["servers", id, "os-volume_attachments", vol]) => {
            let attached = st.volumes.get(*vol).is_some_and(|v| {
                v.body["attachments"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["server_id"] == *id))
            });
            if !attached {
                return fail(404, &format!("volume {vol} is not attached to {id}"));
            }
            if let Some(v) = st.volumes.get_mut(*vol) {
                v.body["attachments"] = json!([]);
            }
            st.transition(Kind::Volume, vol, "detaching", Some("available"));
            StatusCode::ACCEPTED.into_response()
        }
        _ => fail(404, "no such compute route"),
    }
}

fn attachments_of(st: &State, server: &str) -> Vec<Value> {
    st.volumes
        .values()
        .flat_map(|v| v.body["attachments"].as_array().cloned().unwrap_or_default().into_iter().map(move |a| (v.body["id"].clone(), a)))
        .filter(|(_, a)| a["server_id"] == server)
        .map(|(vid, a)| json!({"id": vid, "volumeId": vid, "serverId": server, "device": a["device"]}))
        .collect()
}

fn attach(st: &mut State, server: &str, body: &Value) -> Response {
    if !st.servers.contains_key(server) {
        return fail(404, "Instance could not be found.");
    }
    let vol = body["volumeAttachment"]["volumeId"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let device = body["volumeAttachment"]["device"]
        .as_str()
        .unwrap_or("/dev/vdb")
        .to_owned();
    match st.volumes.get_mut(&vol) {
        None => return fail(404, &format!("Volume {vol} could not be found.")),
        Some(v) if v.body["status"] != "available" => {
            return fail(
                400,
                &format!("Invalid volume: volume {vol} status must be available"),
            )
        }
        Some(v) => {
            v.body["attachments"] =
                json!([{"server_id": server, "device": device, "attachment_id": new_id()}])
        }
    }
    st.transition(Kind::Volume, &vol, "attaching", Some("in-use"));
    reply(
        200,
        json!({"volumeAttachment": {"id": vol, "volumeId": vol, "serverId": server, "device": device}}),
    )
}

fn create_server(st: &mut State, body: &Value) -> Response {
    let s = &body["server"];
    let Some(flavor) = st
        .flavors
        .iter()
        .find(|f| f["id"] == s["flavorRef"])
        .cloned()
    else {
        return fail(
            400,
            &format!("Flavor {} could not be found.", s["flavorRef"]),
        );
    };
    let bdm = s["block_device_mapping_v2"].clone();
    let image = s["imageRef"].as_str().unwrap_or("");
    if bdm.is_null()
        && !st
            .images
            .get(image)
            .is_some_and(|e| e.body["status"] == "active")
    {
        return fail(400, &format!("Image {image} could not be found."));
    }
    if let Some(k) = s["key_name"].as_str() {
        if !st.keypairs.iter().any(|x| x == k) {
            return fail(400, &format!("Invalid key_name provided: {k}"));
        }
    }
    for g in s["security_groups"].as_array().cloned().unwrap_or_default() {
        // Nova takes a group's name or its id.
        if !st
            .security_groups
            .iter()
            .any(|x| x["name"] == g["name"] || x["id"] == g["name"])
        {
            return fail(400, &format!("Security group {} not found.", g["name"]));
        }
    }
    let user_data = match s["user_data"].as_str() {
        Some(u) => match decode_user_data(u) {
            Some(d) => Some(d),
            None => return fail(400, "User data needs to be valid base 64."),
        },
        None => None,
    };
    let nets = s["networks"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![json!({"uuid": NET_ID})]);
    for n in &nets {
        if let Some(pid) = n["port"].as_str() {
            match st.ports.get(pid) {
                None => return fail(400, &format!("Port {pid} could not be found.")),
                Some(p) if p["device_id"] != "" => {
                    return fail(409, &format!("Port {pid} is still in use."))
                }
                _ => {}
            }
        } else if !st.networks.iter().any(|x| n["uuid"] == x.as_str()) {
            return fail(400, &format!("Network {} could not be found.", n["uuid"]));
        }
    }
    let group = body["os:scheduler_hints"]["group"]
        .as_str()
        .map(str::to_owned);
    if let Some(g) = &group {
        if !st.server_groups.contains_key(g) {
            return fail(400, &format!("Invalid server group {g}"));
        }
    }
    let id = new_id();
    if let Some(g) = group.and_then(|g| st.server_groups.get_mut(&g)) {
        if let Some(m) = g["members"].as_array_mut() {
            m.push(json!(id));
        }
    }
    for n in &nets {
        match n["port"].as_str() {
            Some(pid) => {
                if let Some(p) = st.ports.get_mut(pid) {
                    p["device_id"] = json!(id);
                    p["status"] = json!("ACTIVE");
                }
            }
            None => {
                let pid = new_id();
                let ip = st.new_ip();
                let port = crate::routes_network::port_body(
                    &pid,
                    "",
                    n["uuid"].as_str().unwrap_or(NET_ID),
                    &ip,
                    &id,
                    "nova-auto",
                );
                st.ports.insert(pid, port);
            }
        }
    }
    let server = json!({
        "id": id, "name": s["name"], "status": "BUILD", "metadata": s["metadata"].as_object().cloned().unwrap_or_default(),
        "flavor": {"id": flavor["id"]}, "image": if bdm.is_null() { json!({"id": image}) } else { json!("") },
        "key_name": s["key_name"], "OS-EXT-AZ:availability_zone": s["availability_zone"].as_str().unwrap_or("nova"),
        "config_drive": if s["config_drive"] == true { "True" } else { "" },
        "security_groups": s["security_groups"],
        "fake:scheduler_hints": body["os:scheduler_hints"], "fake:block_device_mapping_v2": bdm,
        "fake:networks": nets,
    });
    st.servers.insert(
        id.clone(),
        Entry {
            body: server,
            pending: None,
        },
    );
    if let Some(u) = user_data {
        st.user_data.insert(id.clone(), u);
    }
    st.transition(Kind::Server, &id, "BUILD", Some("ACTIVE"));
    reply(
        202,
        json!({"server": {"id": id, "adminPass": "fake-admin-pass"}}),
    )
}
