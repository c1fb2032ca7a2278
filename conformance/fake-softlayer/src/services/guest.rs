//! `SoftLayer_Virtual_Guest`: create, look at (each look is a provisioning
//! poll), delete, reboot, tags, user metadata, the iSCSI allowed host.

use crate::api::{as_u64, ApiError, Call, Reply};
use crate::render::{self, Kind};
use crate::state::{AllowedHost, Guest, Outcome, State, ACCOUNT_ID};
use serde_json::{json, Value};
use std::time::SystemTime;

const SERVICE: &str = "SoftLayer_Virtual_Guest";

pub fn handle(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    if call.method == "createObject" {
        return create(state, call.param(0));
    }
    let id = call.need_id()?;
    if !state.guests.contains_key(&id) {
        return Err(ApiError::not_found(SERVICE, id));
    }
    match call.method.as_str() {
        "getObject" => {
            poll(state, id);
            Ok(Reply::of(
                Kind::Guest,
                render::guest(state, &state.guests[&id]),
            ))
        }
        "deleteObject" => {
            // As on SoftLayer: a guest in its provisioning transaction cannot
            // be deleted (its billing item can be cancelled).
            let g = &state.guests[&id];
            let failed = g.outcome == Outcome::Fails && g.polls_left == 0;
            if g.provisioned.is_none() && !failed {
                return Err(ApiError::blocking(format!(
                    "Cannot delete guest {id}: a provisioning transaction is in progress."
                )));
            }
            state.remove_guest(id);
            Ok(Reply::plain(json!(true)))
        }
        "rebootSoft" | "rebootHard" | "rebootDefault" => {
            let g = state.guests.get_mut(&id).expect("checked above");
            if g.provisioned.is_none() {
                return Err(ApiError::blocking(
                    "Cannot reboot: the guest is being provisioned.",
                ));
            }
            g.reboots += 1;
            g.power_on = true;
            Ok(Reply::plain(json!(true)))
        }
        "reloadOperatingSystem" => reload(state, id, call),
        "editObject" => {
            let t = call.param(0);
            let g = state.guests.get_mut(&id).expect("checked above");
            if let Some(h) = text(t, "hostname") {
                g.hostname = h.to_owned();
            }
            if let Some(d) = text(t, "domain") {
                g.domain = d.to_owned();
            }
            Ok(Reply::plain(json!(true)))
        }
        "setTags" => {
            let text = call.param(0).as_str().unwrap_or_default();
            let tags = text
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            state.guests.get_mut(&id).expect("checked above").tags = tags;
            Ok(Reply::plain(json!(true)))
        }
        "setUserMetadata" => {
            let value = match call.param(0) {
                Value::Array(items) => items.first().and_then(Value::as_str).map(str::to_owned),
                Value::String(s) => Some(s.clone()),
                _ => None,
            }
            .ok_or_else(|| ApiError::public("setUserMetadata expects an array of strings"))?;
            state.guests.get_mut(&id).expect("checked above").user_data = Some(value);
            Ok(Reply::plain(json!(true)))
        }
        "getUserData" => {
            let g = &state.guests[&id];
            Ok(Reply::plain(json!(g
                .user_data
                .iter()
                .map(|v| json!({"value": v}))
                .collect::<Vec<_>>())))
        }
        "getAllowedHost" => {
            let g = &state.guests[&id];
            Ok(Reply::plain(
                g.allowed_host
                    .as_ref()
                    .map(|h| render::allowed_host(id, h))
                    .unwrap_or(Value::Null),
            ))
        }
        "getAllowedNetworkStorage" => {
            let list = state
                .volumes
                .values()
                .filter(|v| v.allowed_guests.contains(&id))
                .map(|v| render::volume(state, v))
                .collect();
            Ok(Reply::of(Kind::Volume, Value::Array(list)))
        }
        other => Err(ApiError::no_method(SERVICE, other)),
    }
}

/// One look at a provisioning guest brings it one poll closer to ready.
fn poll(state: &mut State, id: u64) {
    let g = state.guests.get_mut(&id).expect("caller checked");
    if g.provisioned.is_some() {
        return;
    }
    if g.polls_left > 0 && g.outcome != Outcome::NeverFinishes {
        g.polls_left -= 1;
    }
    if g.polls_left == 0 && g.outcome == Outcome::Ready {
        // An OS reload's provision date is a later second than the first's.
        let now = SystemTime::now();
        g.provisioned = Some(match g.previous_provision.take() {
            Some(before) => now.max(before + std::time::Duration::from_secs(1)),
            None => now,
        });
        g.power_on = true;
    }
}

/// `reloadOperatingSystem("FORCE", {imageTemplateId, sshKeyIds})`: the
/// guest gets the template's image, reprovisioning (a transaction, no
/// provision date) for the configured polls, at least one.
fn reload(state: &mut State, id: u64, call: &Call) -> Result<Reply, ApiError> {
    if call.param(0).as_str() != Some("FORCE") {
        return Err(ApiError::public(
            "reloadOperatingSystem: pass the token 'FORCE' to reload without a confirmation.",
        ));
    }
    let config = call.param(1);
    let template = as_u64(&config["imageTemplateId"])
        .ok_or_else(|| ApiError::public("reloadOperatingSystem: imageTemplateId must be set."))?;
    let gid = state
        .templates
        .get(&template)
        .map(|t| t.global_identifier.clone())
        .ok_or_else(|| ApiError::public(format!("Image template {template} was not found.")))?;
    let polls = state.provisioning_polls.max(1);
    let g = state.guests.get_mut(&id).expect("caller checked");
    if g.provisioned.is_none() {
        return Err(ApiError::blocking(format!(
            "Cannot reload guest {id}: a transaction is in progress."
        )));
    }
    g.template_gid = gid;
    g.previous_provision = g.provisioned;
    if let Some(keys) = config["sshKeyIds"].as_array() {
        g.ssh_key_ids = keys.iter().filter_map(as_u64).collect();
    }
    g.provisioned = None;
    g.power_on = false;
    g.polls_left = polls;
    g.outcome = Outcome::Ready;
    g.os_reloads += 1;
    Ok(Reply::plain(json!("1")))
}

fn text<'a>(t: &'a Value, key: &str) -> Option<&'a str> {
    t.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn create(state: &mut State, t: &Value) -> Result<Reply, ApiError> {
    if !t.is_object() {
        return Err(ApiError::public(
            "createObject expects a SoftLayer_Virtual_Guest template",
        ));
    }
    let hostname =
        text(t, "hostname").ok_or_else(|| ApiError::public("Property 'hostname' must be set."))?;
    let domain =
        text(t, "domain").ok_or_else(|| ApiError::public("Property 'domain' must be set."))?;
    let dc_name = t["datacenter"]["name"].as_str().unwrap_or_default();
    if state.datacenter(dc_name).is_none() {
        return Err(ApiError::public(format!(
            "Location '{dc_name}' is not a valid datacenter."
        )));
    }
    let flavor = text(&t["supplementalCreateObjectOptions"], "flavorKeyName").map(str::to_owned);
    let (cpus, memory) = match &flavor {
        Some(f) => {
            flavor_size(f).ok_or_else(|| ApiError::public(format!("Flavor '{f}' is not valid.")))?
        }
        None => (
            as_u64(&t["startCpus"])
                .ok_or_else(|| ApiError::public("Property 'startCpus' must be set."))?
                as u32,
            as_u64(&t["maxMemory"])
                .ok_or_else(|| ApiError::public("Property 'maxMemory' must be set."))?,
        ),
    };
    let gid = t["blockDeviceTemplateGroup"]["globalIdentifier"]
        .as_str()
        .unwrap_or_default();
    if !state.templates.values().any(|x| x.global_identifier == gid) {
        return Err(ApiError::public(format!(
            "Image template '{gid}' was not found."
        )));
    }
    let private_vlan = match as_u64(&t["primaryBackendNetworkComponent"]["networkVlan"]["id"]) {
        Some(id) => id,
        None => state
            .vlans
            .values()
            .find(|v| v.space == "PRIVATE" && v.datacenter == dc_name)
            .map(|v| v.id)
            .ok_or_else(|| ApiError::public("No private VLAN in this datacenter."))?,
    };
    check_vlan(state, private_vlan, "PRIVATE", dc_name)?;
    let private_only = t["privateNetworkOnlyFlag"].as_bool().unwrap_or(false);
    let public_vlan = match as_u64(&t["primaryNetworkComponent"]["networkVlan"]["id"]) {
        Some(id) => {
            check_vlan(state, id, "PUBLIC", dc_name)?;
            Some(id)
        }
        None if private_only => None,
        None => state
            .vlans
            .values()
            .find(|v| v.space == "PUBLIC" && v.datacenter == dc_name)
            .map(|v| v.id),
    };
    let backend_ip = match text(t, "primaryBackendIpAddress") {
        Some(ip) if state.ip_free_on(private_vlan, ip) => ip.to_owned(),
        Some(ip) => {
            return Err(ApiError::public(format!(
                "IP address {ip} is not available on VLAN {private_vlan}."
            )))
        }
        None => state
            .allocate_ip(private_vlan)
            .ok_or_else(|| ApiError::public("The VLAN has no free address."))?,
    };
    let public_ip = match public_vlan {
        Some(v) => Some(
            state
                .allocate_ip(v)
                .ok_or_else(|| ApiError::public("The VLAN has no free address."))?,
        ),
        None => None,
    };
    let id = state.next_id();
    let transaction_id = state.next_id();
    let billing_item_id = state.next_id();
    let polls = state.provisioning_polls;
    let outcome = state.provisioning_outcome;
    let guest = Guest {
        id,
        global_identifier: uuid::Uuid::new_v4().to_string(),
        hostname: hostname.into(),
        domain: domain.into(),
        datacenter: dc_name.into(),
        cpus,
        memory_mb: memory,
        flavor,
        hourly: t["hourlyBillingFlag"].as_bool().unwrap_or(false),
        local_disk: t["localDiskFlag"].as_bool().unwrap_or(true),
        dedicated: t["dedicatedAccountHostOnlyFlag"].as_bool().unwrap_or(false),
        dedicated_host_id: as_u64(&t["dedicatedHost"]["id"]),
        private_only: public_vlan.is_none(),
        max_speed: t["networkComponents"][0]["maxSpeed"]
            .as_u64()
            .unwrap_or(100) as u32,
        ephemeral_gb: t["blockDevices"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["device"] == "2")
            .and_then(|d| as_u64(&d["diskImage"]["capacity"]))
            .unwrap_or(25),
        template_gid: gid.into(),
        private_vlan,
        public_vlan,
        backend_ip,
        public_ip,
        ssh_key_ids: t["sshKeys"]
            .as_array()
            .map(|a| a.iter().filter_map(|k| as_u64(&k["id"])).collect())
            .unwrap_or_default(),
        tags: Vec::new(),
        user_data: t["userData"][0]["value"].as_str().map(str::to_owned),
        created: SystemTime::now(),
        provisioned: (polls == 0 && outcome == Outcome::Ready).then(SystemTime::now),
        polls_left: polls,
        outcome,
        transaction_id,
        billing_item_id,
        allowed_host: None,
        reboots: 0,
        power_on: polls == 0 && outcome == Outcome::Ready,
        os_reloads: 0,
        previous_provision: None,
    };
    state.guests.insert(id, guest);
    Ok(Reply::of(
        Kind::Guest,
        render::guest(state, &state.guests[&id]),
    ))
}

fn check_vlan(state: &State, id: u64, space: &str, dc: &str) -> Result<(), ApiError> {
    match state.vlans.get(&id) {
        None => Err(ApiError::public(format!(
            "VLAN {id} was not found on this account."
        ))),
        Some(v) if v.space != space => Err(ApiError::public(format!(
            "VLAN {id} is a {} VLAN, not {space}.",
            v.space
        ))),
        Some(v) if v.datacenter != dc => Err(ApiError::public(format!(
            "VLAN {id} is in {}, not {dc}.",
            v.datacenter
        ))),
        Some(_) => Ok(()),
    }
}

/// `B1_2X8X25` style flavors: cpus and memory (GB) in the name.
fn flavor_size(name: &str) -> Option<(u32, u64)> {
    let mut parts = name.split('_').nth(1)?.split('X');
    let cpus = parts.next()?.parse().ok()?;
    let mem_gb: u64 = parts.next()?.parse().ok()?;
    Some((cpus, mem_gb * 1024))
}

/// The allowed host a guest gets when first authorised to a volume: its
/// initiator name and CHAP credentials.
pub fn ensure_allowed_host(state: &mut State, guest: u64) {
    let (id, cred) = (state.next_id(), state.next_id());
    let password: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..16)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect()
    };
    if let Some(g) = state.guests.get_mut(&guest) {
        if g.allowed_host.is_none() {
            let user = format!("SL02SU{ACCOUNT_ID}-V{guest}");
            g.allowed_host = Some(AllowedHost {
                id,
                name: format!("iqn.2005-05.com.softlayer:{}", user.to_lowercase()),
                credential_id: cred,
                username: user,
                password: format!("chap{password}"),
            });
        }
    }
}
