//! `SoftLayer_Network_Storage`: iSCSI volumes (and their snapshots, which
//! are storage objects too): look, authorise and deauthorise guests, notes,
//! snapshots.

use crate::api::{as_u64, ApiError, Call, Reply};
use crate::render::{self, Kind};
use crate::services::guest::ensure_allowed_host;
use crate::state::{Snapshot, State};
use serde_json::{json, Value};
use std::time::SystemTime;

const SERVICE: &str = "SoftLayer_Network_Storage";

pub fn handle(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    let id = call.need_id()?;
    if let Some(snap) = state.snapshots.get(&id) {
        return match call.method.as_str() {
            "getObject" => Ok(Reply::of(Kind::Snapshot, render::snapshot(snap))),
            "deleteObject" => {
                state.snapshots.remove(&id);
                Ok(Reply::plain(json!(true)))
            }
            other => Err(ApiError::public(format!(
                "{other} is not available on snapshot {id}."
            ))),
        };
    }
    if !state.volumes.contains_key(&id) {
        return Err(ApiError::not_found(SERVICE, id));
    }
    match call.method.as_str() {
        "getObject" => Ok(Reply::of(Kind::Volume, render::volume(state, &state.volumes[&id]))),
        "allowAccessFromVirtualGuest" => {
            let guest = guest_param(state, call)?;
            let (vdc, gdc) = (&state.volumes[&id].datacenter, &state.guests[&guest].datacenter);
            if vdc != gdc {
                return Err(ApiError::public(format!("Volume {id} is in {vdc}; guest {guest} is in {gdc}.")));
            }
            ensure_allowed_host(state, guest);
            state.volumes.get_mut(&id).expect("checked").allowed_guests.insert(guest);
            Ok(Reply::plain(json!(true)))
        }
        "removeAccessFromVirtualGuest" => {
            let guest = guest_param(state, call)?;
            if !state.volumes.get_mut(&id).expect("checked").allowed_guests.remove(&guest) {
                return Err(ApiError::public(format!("Virtual guest {guest} is not authorized to access volume {id}.")));
            }
            Ok(Reply::plain(json!(true)))
        }
        "getAllowedVirtualGuests" => {
            let list = state.volumes[&id]
                .allowed_guests
                .iter()
                .filter_map(|g| state.guests.get(g))
                .map(|g| render::guest(state, g))
                .collect();
            Ok(Reply::of(Kind::Guest, Value::Array(list)))
        }
        "editObject" => {
            let notes = &call.param(0)["notes"];
            state.volumes.get_mut(&id).expect("checked").notes = notes.as_str().map(str::to_owned);
            Ok(Reply::plain(json!(true)))
        }
        "createSnapshot" => {
            if state.volumes[&id].snapshot_gb == 0 {
                return Err(ApiError::public(format!(
                    "Volume {id} has no snapshot space: order snapshot space before taking snapshots."
                )));
            }
            let snap_id = state.next_id();
            let snap = Snapshot {
                id: snap_id,
                volume_id: id,
                notes: call.param(0).as_str().map(str::to_owned),
                created: SystemTime::now(),
            };
            let value = render::snapshot(&snap);
            state.snapshots.insert(snap_id, snap);
            Ok(Reply::of(Kind::Snapshot, value))
        }
        "getSnapshots" => {
            let list = state.snapshots.values().filter(|s| s.volume_id == id).map(render::snapshot).collect();
            Ok(Reply::of(Kind::Snapshot, Value::Array(list)))
        }
        "deleteObject" => Err(ApiError::public(
            "Block volumes are removed by cancelling their billing item (SoftLayer_Billing_Item::cancelItem).",
        )),
        other => Err(ApiError::no_method(SERVICE, other)),
    }
}

/// The guest a call names (`[{"id": N}]`); missing guests are not found.
fn guest_param(state: &State, call: &Call) -> Result<u64, ApiError> {
    let p = call.param(0);
    let id = as_u64(&p["id"])
        .or_else(|| as_u64(p))
        .ok_or_else(|| ApiError::public("Expected a SoftLayer_Virtual_Guest with an id."))?;
    if !state.guests.contains_key(&id) {
        return Err(ApiError::not_found("SoftLayer_Virtual_Guest", id));
    }
    Ok(id)
}
