//! `SoftLayer_Product_Order`: `verifyOrder` and `placeOrder` for block
//! storage as a service (new volumes and size upgrades).

use crate::api::{as_u64, ApiError, Call, Reply};
use crate::state::{rfc3339, State, Volume};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

const NEW: &str = "SoftLayer_Container_Product_Order_Network_Storage_AsAService";
const UPGRADE: &str = "SoftLayer_Container_Product_Order_Network_Storage_AsAService_Upgrade";
pub const TIERS: [&str; 4] = [
    "LOW_INTENSITY_TIER",
    "READHEAVY_TIER",
    "WRITEHEAVY_TIER",
    "10_IOPS_PER_GB",
];

pub fn handle(state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    let place = match call.method.as_str() {
        "placeOrder" => true,
        "verifyOrder" => false,
        other => return Err(ApiError::no_method("SoftLayer_Product_Order", other)),
    };
    let order = call.param(0);
    let kind = order["complexType"].as_str().unwrap_or_default();
    let size = as_u64(&order["volumeSize"])
        .ok_or_else(|| ApiError::public("Property 'volumeSize' must be set."))?;
    if !(20..=12_000).contains(&size) {
        return Err(ApiError::public(format!(
            "Volume size {size} GB is not orderable: 20 to 12000 GB."
        )));
    }
    match kind {
        NEW => new_volume(state, order, size, place),
        UPGRADE => upgrade(state, order, size, place),
        other => Err(ApiError::public(format!(
            "Order container '{other}' is not supported by this account."
        ))),
    }
}

fn receipt(order_id: Option<u64>, order: &Value) -> Value {
    json!({
        "orderId": order_id,
        "orderDate": rfc3339(SystemTime::now()),
        "orderDetails": order,
        "placedOrder": {"id": order_id, "status": "APPROVED"},
        "prices": order.get("prices").cloned().unwrap_or(json!([])),
    })
}

fn new_volume(state: &mut State, order: &Value, size: u64, place: bool) -> Result<Reply, ApiError> {
    let location = &order["location"];
    let dc = state
        .datacenters
        .iter()
        .find(|d| as_u64(location) == Some(d.id) || location.as_str() == Some(d.name.as_str()))
        .map(|d| d.name.clone())
        .ok_or_else(|| {
            ApiError::public(format!("Location {location} is not a valid datacenter."))
        })?;
    let tier = order["prices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["item"]["keyName"].as_str())
        .find(|k| TIERS.contains(k))
        .map(str::to_owned);
    let iops = as_u64(&order["iops"]);
    match (&tier, iops) {
        (None, None) => {
            return Err(ApiError::public(
                "Either 'iops' or an endurance tier price must be ordered.",
            ))
        }
        (None, Some(i)) if !(100..=48_000).contains(&i) || i % 100 != 0 => {
            return Err(ApiError::public(format!(
                "{i} IOPS is not orderable: 100 to 48000 in steps of 100."
            )))
        }
        _ => {}
    }
    if !place {
        return Ok(crate::api::Reply::plain(receipt(None, order)));
    }
    let (id, order_id, billing) = (state.next_id(), state.next_id(), state.next_id());
    let lun = state.volumes.len() as u32 + 1;
    state.volumes.insert(
        id,
        Volume {
            id,
            username: format!("SL02SEL{}-{}", crate::state::ACCOUNT_ID, lun),
            capacity_gb: size,
            iops: if tier.is_some() { None } else { iops },
            tier,
            snapshot_gb: as_u64(&order["snapshotSize"]).unwrap_or(0),
            datacenter: dc,
            lun_id: lun,
            target_ip: format!("10.2.{}.{}", lun / 250, lun % 250 + 1),
            notes: None,
            order_id,
            billing_item_id: billing,
            allowed_guests: BTreeSet::new(),
            created: SystemTime::now(),
            polls_left: state.volume_polls,
            files: BTreeMap::new(),
        },
    );
    Ok(Reply::plain(receipt(Some(order_id), order)))
}

fn upgrade(state: &mut State, order: &Value, size: u64, place: bool) -> Result<Reply, ApiError> {
    let id = as_u64(&order["volume"]["id"])
        .ok_or_else(|| ApiError::public("Property 'volume.id' must be set."))?;
    let current = state
        .volumes
        .get(&id)
        .ok_or_else(|| ApiError::not_found("SoftLayer_Network_Storage", id))?
        .capacity_gb;
    if size < current {
        return Err(ApiError::public(format!(
            "Volume {id} is {current} GB: its size cannot be decreased to {size} GB."
        )));
    }
    if !place {
        return Ok(Reply::plain(receipt(None, order)));
    }
    let order_id = state.next_id();
    state.volumes.get_mut(&id).expect("checked").capacity_gb = size;
    Ok(Reply::plain(receipt(Some(order_id), order)))
}
