//! `SoftLayer_Account` lists, `SoftLayer_Billing_Item::cancelItem`,
//! `SoftLayer_Location_Datacenter::getDatacenters` and
//! `SoftLayer_Network_Vlan::getObject`: the account-wide views.

use crate::api::{ApiError, Call, Reply};
use crate::query;
use crate::render::{self, Kind};
use crate::state::State;
use serde_json::{json, Value};

fn filtered(call: &Call, items: Vec<Value>) -> Vec<Value> {
    // On the account, a filter starts with the property it lists.
    let filter = match (&call.filter, call.service.as_str()) {
        (Some(f), "SoftLayer_Account") => f.as_object().and_then(|o| o.values().next().cloned()),
        (f, _) => f.clone(),
    };
    match &filter {
        Some(f) => items.into_iter().filter(|v| query::matches(v, f)).collect(),
        None => items,
    }
}

pub fn account(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    match call.method.as_str() {
        "getIscsiNetworkStorage" | "getNetworkStorage" => {
            // A volume is listed once its provisioning polls are used up.
            for v in state.volumes.values_mut() {
                v.polls_left = v.polls_left.saturating_sub(1);
            }
            let all = state
                .volumes
                .values()
                .filter(|v| v.polls_left == 0)
                .map(|v| render::volume(state, v))
                .collect();
            Ok(Reply::of(Kind::Volume, Value::Array(filtered(call, all))))
        }
        "getSshKeys" => {
            let all = state
                .ssh_keys
                .values()
                .map(|k| json!({"id": k.id, "label": k.label, "key": k.key, "fingerprint": fingerprint(&k.key)}))
                .collect();
            Ok(Reply::plain(Value::Array(filtered(call, all))))
        }
        "getVirtualGuests" => {
            let all = state
                .guests
                .values()
                .map(|g| render::guest(state, g))
                .collect();
            Ok(Reply::of(Kind::Guest, Value::Array(filtered(call, all))))
        }
        "getBlockDeviceTemplateGroups" | "getPrivateBlockDeviceTemplateGroups" => {
            let all = state.templates.values().map(render::template).collect();
            Ok(Reply::of(Kind::Template, Value::Array(filtered(call, all))))
        }
        other => Err(ApiError::no_method("SoftLayer_Account", other)),
    }
}

/// A stand-in for the key's MD5 fingerprint: stable, derived from the key.
pub fn fingerprint(key: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.trim().hash(&mut h);
    let v = h.finish().to_be_bytes();
    v.iter()
        .chain(v.iter())
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `SoftLayer_Security_Ssh_Key`: `createObject` (a key and its label) and
/// `getObject`.
pub fn ssh_key(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    match call.method.as_str() {
        "createObject" => {
            let t = call.param(0);
            let key = t["key"]
                .as_str()
                .filter(|k| k.starts_with("ssh-"))
                .ok_or_else(|| ApiError::public("Property 'key' must be an SSH public key."))?;
            if state.ssh_keys.values().any(|k| k.key.trim() == key.trim()) {
                return Err(ApiError::public("SSH key already exists on this account."));
            }
            let id = state.next_id();
            let label = t["label"].as_str().unwrap_or_default().to_owned();
            state.ssh_keys.insert(
                id,
                crate::state::SshKey {
                    id,
                    label: label.clone(),
                    key: key.to_owned(),
                },
            );
            Ok(Reply::plain(
                json!({"id": id, "label": label, "key": key, "fingerprint": fingerprint(key)}),
            ))
        }
        "getObject" => {
            let id = call.need_id()?;
            let k = state
                .ssh_keys
                .get(&id)
                .ok_or_else(|| ApiError::not_found("SoftLayer_Security_Ssh_Key", id))?;
            Ok(Reply::plain(
                json!({"id": k.id, "label": k.label, "key": k.key, "fingerprint": fingerprint(&k.key)}),
            ))
        }
        other => Err(ApiError::no_method("SoftLayer_Security_Ssh_Key", other)),
    }
}

pub fn billing_item(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    if call.method != "cancelItem" && call.method != "cancelService" {
        return Err(ApiError::no_method("SoftLayer_Billing_Item", &call.method));
    }
    let id = call.need_id()?;
    if let Some(vid) = state
        .volumes
        .values()
        .find(|v| v.billing_item_id == id)
        .map(|v| v.id)
    {
        state.volumes.remove(&vid);
        state.snapshots.retain(|_, s| s.volume_id != vid);
        return Ok(Reply::plain(json!(true)));
    }
    if let Some(gid) = state
        .guests
        .values()
        .find(|g| g.billing_item_id == id)
        .map(|g| g.id)
    {
        state.remove_guest(gid);
        return Ok(Reply::plain(json!(true)));
    }
    Err(ApiError::not_found("SoftLayer_Billing_Item", id))
}

pub fn datacenter(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    match call.method.as_str() {
        "getDatacenters" => {
            let all = state
                .datacenters
                .iter()
                .map(|d| json!({"id": d.id, "name": d.name, "longName": d.long_name}))
                .collect();
            Ok(Reply::plain(Value::Array(filtered(call, all))))
        }
        other => Err(ApiError::no_method("SoftLayer_Location_Datacenter", other)),
    }
}

pub fn vlan(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    if call.method != "getObject" {
        return Err(ApiError::no_method("SoftLayer_Network_Vlan", &call.method));
    }
    let id = call.need_id()?;
    let v = state
        .vlans
        .get(&id)
        .ok_or_else(|| ApiError::not_found("SoftLayer_Network_Vlan", id))?;
    Ok(Reply::of(Kind::Vlan, render::vlan(state, v)))
}

pub fn subnet(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    if call.method != "getObject" {
        return Err(ApiError::no_method(
            "SoftLayer_Network_Subnet",
            &call.method,
        ));
    }
    let id = call.need_id()?;
    let v = state
        .vlans
        .values()
        .find(|v| v.subnet_id == id)
        .ok_or_else(|| ApiError::not_found("SoftLayer_Network_Subnet", id))?;
    Ok(Reply::of(Kind::Subnet, render::subnet_object(state, v)))
}

pub fn template(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    match call.method.as_str() {
        "getByIdentifier" => {
            let gid = call.param(0).as_str().unwrap_or_default();
            let list = state
                .templates
                .values()
                .filter(|t| t.global_identifier == gid)
                .map(render::template)
                .collect();
            Ok(Reply::of(Kind::Template, Value::Array(list)))
        }
        "getObject" => {
            let id = call.need_id()?;
            let t = state.templates.get_mut(&id).ok_or_else(|| {
                ApiError::not_found("SoftLayer_Virtual_Guest_Block_Device_Template_Group", id)
            })?;
            super::image_import::poll(t);
            Ok(Reply::of(Kind::Template, render::template(t)))
        }
        "createFromExternalSource" => super::image_import::create_from_external_source(state, call),
        "setBootMode" => super::image_import::set_boot_mode(state, call),
        "deleteObject" => {
            let id = call.need_id()?;
            state.templates.remove(&id).ok_or_else(|| {
                ApiError::not_found("SoftLayer_Virtual_Guest_Block_Device_Template_Group", id)
            })?;
            Ok(Reply::plain(
                json!({"id": id, "name": "CLOUD_TEMPLATE_DELETE"}),
            ))
        }
        other => Err(ApiError::no_method(
            "SoftLayer_Virtual_Guest_Block_Device_Template_Group",
            other,
        )),
    }
}
