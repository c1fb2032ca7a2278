//! Neutron: security groups, subnets, ports with fixed IPs, floating IPs.

use crate::routes::{query, reply};
use crate::state::{new_id, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

fn nfail(code: u16, kind: &str, message: &str) -> Response {
    reply(
        code,
        json!({"NeutronError": {"type": kind, "message": message, "detail": ""}}),
    )
}

pub fn port_body(id: &str, name: &str, net: &str, ip: &str, device: &str, owner: &str) -> Value {
    let b = id.as_bytes();
    let mac = format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
    json!({"id": id, "name": name, "network_id": net, "mac_address": mac, "status": "DOWN",
        "fixed_ips": [{"ip_address": ip, "subnet_id": "subnet-1"}], "device_id": device, "device_owner": owner, "description": "",
        "security_groups": []})
}

pub fn neutron(
    st: &mut State,
    m: &Method,
    rest: &[&str],
    q: &[(String, String)],
    body: &Value,
) -> Response {
    match (m.as_str(), rest) {
        ("GET", ["security-groups"]) => reply(200, json!({"security_groups": st.security_groups})),
        // One /24 per network (the Go CPI looks a fixed IP's subnet up).
        ("GET", ["subnets"]) => {
            let subnets: Vec<Value> = st
                .networks
                .iter()
                .filter(|n| query(q, "network_id").is_none_or(|id| *n == id))
                .map(|n| {
                    let id = if n == crate::NET_ID {
                        "subnet-1".to_owned()
                    } else {
                        format!("subnet-{n}")
                    };
                    json!({"id": id, "network_id": n, "cidr": "10.0.0.0/24", "ip_version": 4,
                        "gateway_ip": "10.0.0.1", "enable_dhcp": true})
                })
                .collect();
            reply(200, json!({ "subnets": subnets }))
        }
        ("POST", ["ports"]) => {
            let p = &body["port"];
            let net = p["network_id"].as_str().unwrap_or("");
            if !st.networks.iter().any(|n| n == net) {
                return nfail(
                    404,
                    "NetworkNotFound",
                    &format!("Network {net} could not be found."),
                );
            }
            let ip = match p["fixed_ips"][0]["ip_address"].as_str() {
                Some(ip) => ip.to_owned(),
                None => st.new_ip(),
            };
            if st
                .ports
                .values()
                .any(|x| x["network_id"] == net && x["fixed_ips"][0]["ip_address"] == ip.as_str())
            {
                return nfail(
                    409,
                    "IpAddressAlreadyAllocated",
                    &format!("IP address {ip} already allocated in subnet subnet-1"),
                );
            }
            let id = new_id();
            let mut port = port_body(&id, p["name"].as_str().unwrap_or(""), net, &ip, "", "");
            port["security_groups"] = p["security_groups"].clone();
            port["allowed_address_pairs"] = match &p["allowed_address_pairs"] {
                Value::Null => json!([]),
                pairs => pairs.clone(),
            };
            st.ports.insert(id, port.clone());
            reply(201, json!({ "port": port }))
        }
        ("GET", ["ports"]) => {
            let ports: Vec<Value> = st
                .ports
                .values()
                .filter(|p| query(q, "device_id").is_none_or(|d| p["device_id"] == d))
                .filter(|p| query(q, "name").is_none_or(|n| p["name"] == n))
                .filter(|p| query(q, "description").is_none_or(|n| p["description"] == n))
                .filter(|p| {
                    query(q, "fixed_ips").is_none_or(|f| {
                        let ip = f.strip_prefix("ip_address=").unwrap_or(f);
                        p["fixed_ips"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|x| x["ip_address"] == ip))
                    })
                })
                .cloned()
                .collect();
            reply(200, json!({ "ports": ports }))
        }
        ("PUT", ["ports", id]) => match st.ports.get_mut(*id) {
            Some(p) => {
                for key in ["name", "description"] {
                    if let Some(v) = body["port"][key].as_str() {
                        p[key] = json!(v);
                    }
                }
                reply(200, json!({"port": p}))
            }
            None => nfail(
                404,
                "PortNotFound",
                &format!("Port {id} could not be found."),
            ),
        },
        ("DELETE", ["ports", id]) => {
            if st.delete_port(id) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                nfail(
                    404,
                    "PortNotFound",
                    &format!("Port {id} could not be found."),
                )
            }
        }
        ("GET", ["floatingips"]) => {
            let fips: Vec<Value> = st
                .floating_ips
                .values()
                .filter(|f| {
                    query(q, "floating_ip_address").is_none_or(|a| f["floating_ip_address"] == a)
                })
                .cloned()
                .collect();
            reply(200, json!({ "floatingips": fips }))
        }
        ("PUT", ["floatingips", id]) => {
            let port = body["floatingip"]["port_id"].clone();
            if let Some(pid) = port.as_str() {
                if !st.ports.contains_key(pid) {
                    return nfail(
                        404,
                        "PortNotFound",
                        &format!("Port {pid} could not be found."),
                    );
                }
            }
            match st.floating_ips.get_mut(*id) {
                Some(f) => {
                    f["port_id"] = port;
                    reply(200, json!({"floatingip": f}))
                }
                None => nfail(404, "FloatingIPNotFound", "Floating IP could not be found."),
            }
        }
        _ => {
            let _ = new_id;
            nfail(404, "HTTPNotFound", "no such network route")
        }
    }
}

/// Octavia: pools (seeded) and their members.
pub fn octavia(
    st: &mut State,
    m: &Method,
    rest: &[&str],
    q: &[(String, String)],
    body: &Value,
) -> Response {
    let ofail = |code: u16, message: &str| {
        reply(
            code,
            json!({"faultcode": "Client", "faultstring": message, "debuginfo": null}),
        )
    };
    match (m.as_str(), rest) {
        ("GET", ["lbaas", "pools"]) => {
            let pools: Vec<Value> = st
                .pools
                .iter()
                .filter(|p| query(q, "name").is_none_or(|n| p["name"] == n))
                .cloned()
                .collect();
            reply(200, json!({ "pools": pools }))
        }
        ("GET", ["lbaas", "pools", pool, "members"]) => {
            if !st.pools.iter().any(|p| p["id"] == *pool) {
                return ofail(404, &format!("Pool {pool} could not be found."));
            }
            let members: Vec<Value> = st
                .members
                .values()
                .filter(|x| x["pool_id"] == *pool)
                .filter(|x| query(q, "address").is_none_or(|a| x["address"] == a))
                .filter(|x| {
                    query(q, "protocol_port")
                        .is_none_or(|p| x["protocol_port"] == p.parse::<u64>().unwrap_or(0))
                })
                .cloned()
                .collect();
            reply(200, json!({ "members": members }))
        }
        ("POST", ["lbaas", "pools", pool, "members"]) => {
            if !st.pools.iter().any(|p| p["id"] == *pool) {
                return ofail(404, &format!("Pool {pool} could not be found."));
            }
            let b = &body["member"];
            let (Some(address), Some(port)) = (b["address"].as_str(), b["protocol_port"].as_u64())
            else {
                return ofail(400, "member needs address and protocol_port");
            };
            if st.members.values().any(|x| {
                x["pool_id"] == *pool && x["address"] == address && x["protocol_port"] == port
            }) {
                return ofail(
                    409,
                    &format!("Duplicate member with address {address} and port {port}"),
                );
            }
            let id = new_id();
            let member = json!({"id": id, "pool_id": pool, "address": address, "protocol_port": port,
                "subnet_id": b["subnet_id"], "name": b["name"], "provisioning_status": "ACTIVE",
                "operating_status": "ONLINE"});
            st.members.insert(id, member.clone());
            reply(201, json!({ "member": member }))
        }
        ("DELETE", ["lbaas", "pools", pool, "members", id]) => match st.members.get(*id) {
            Some(x) if x["pool_id"] == *pool => {
                st.members.remove(*id);
                StatusCode::NO_CONTENT.into_response()
            }
            _ => ofail(404, &format!("Member {id} could not be found.")),
        },
        ("GET", ["lbaas", "loadbalancers", id]) => reply(
            200,
            json!({"loadbalancer": {"id": id, "provisioning_status": "ACTIVE", "operating_status": "ONLINE"}}),
        ),
        _ => ofail(404, "no such load-balancer route"),
    }
}
