//! `SoftLayer_Product_Order`: `verifyOrder` and `placeOrder` for block
//! storage as a service (new volumes and size upgrades).

use crate::api::{as_u64, ApiError, Call, Reply};
use crate::services::catalog::{self, Priced};
use crate::state::{rfc3339, State, Volume};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

const NEW: &str = "SoftLayer_Container_Product_Order_Network_Storage_AsAService";
const UPGRADE: &str = "SoftLayer_Container_Product_Order_Network_Storage_AsAService_Upgrade";

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

/// What an order's prices buy, checked the way the real catalogue would
/// refuse them: unknown or other-location prices, a missing category, a
/// space price whose range does not hold the size, a snapshot price of
/// another tier.
#[derive(Default)]
struct Bought {
    service: bool,
    block: bool,
    perf_space: bool,
    perf_iops: bool,
    endurance_space: Option<&'static str>,
    tier: Option<&'static str>,
    snapshot: Option<(u64, Option<&'static str>)>,
}

fn bought(order: &Value, size: u64) -> Result<Bought, ApiError> {
    if as_u64(&order["packageId"]) != Some(catalog::PACKAGE_ID) {
        return Err(ApiError::public(format!(
            "Package {} is not orderable here: use package 759.",
            order["packageId"]
        )));
    }
    let mut b = Bought::default();
    for p in order["prices"].as_array().into_iter().flatten() {
        let id = as_u64(&p["id"]).ok_or_else(|| ApiError::public("Every price needs an id."))?;
        match catalog::meaning_of(id) {
            None => {
                return Err(ApiError::public(format!(
                    "Price # {id} is not valid for package 759."
                )))
            }
            Some(Priced::OtherLocation) => {
                return Err(ApiError::public(format!(
                    "Price # {id} is not available in this location."
                )))
            }
            Some(Priced::Service) => b.service = true,
            Some(Priced::Block) => b.block = true,
            Some(Priced::File) => {
                return Err(ApiError::public(
                    "File storage prices do not belong in a block order.",
                ))
            }
            Some(Priced::PerfSpace(min, max)) | Some(Priced::PerfIops(min, max))
                if size < min || size > max =>
            {
                return Err(ApiError::public(format!(
                    "Price # {id} is for {min} to {max} GB, not {size} GB."
                )))
            }
            Some(Priced::PerfSpace(..)) => b.perf_space = true,
            Some(Priced::PerfIops(..)) => b.perf_iops = true,
            Some(Priced::EnduranceSpace(t)) => b.endurance_space = Some(t),
            Some(Priced::Tier(t)) => b.tier = Some(t),
            Some(Priced::Snapshot(gb, t)) => b.snapshot = Some((gb, t)),
        }
    }
    if !b.service {
        return Err(ApiError::public(
            "The order is missing a price for category storage_as_a_service.",
        ));
    }
    let performance = b.perf_space && b.perf_iops;
    let endurance = b.endurance_space.is_some() && b.endurance_space == b.tier;
    if performance == endurance {
        return Err(ApiError::public(
            "The order needs either performance space and IOPS prices, or endurance space and tier prices of one tier.",
        ));
    }
    if let Some((_, t)) = b.snapshot {
        if t != b.tier {
            return Err(ApiError::public(
                "The snapshot space price does not match the volume's tier or IOPS.",
            ));
        }
    }
    Ok(b)
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
    let b = bought(order, size)?;
    if !b.block {
        return Err(ApiError::public(
            "The order is missing a price for category storage_block.",
        ));
    }
    let iops = as_u64(&order["iops"]);
    let tier = b.tier.map(str::to_owned);
    if tier.is_none() {
        match iops {
            Some(i) if (100..=48_000).contains(&i) && i % 100 == 0 => {}
            Some(i) => {
                return Err(ApiError::public(format!(
                    "{i} IOPS is not orderable: 100 to 48000 in steps of 100."
                )))
            }
            None => {
                return Err(ApiError::public(
                    "Property 'iops' must be set for a performance volume.",
                ))
            }
        }
    }
    if !place {
        return Ok(Reply::plain(receipt(None, order)));
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
            snapshot_gb: b.snapshot.map(|(gb, _)| gb).unwrap_or(0),
            datacenter: dc,
            lun_id: lun,
            target_ip: format!("10.2.{}.{}", lun / 250, lun % 250 + 1),
            notes: None,
            order_id,
            container_identifier: order["containerIdentifier"].as_str().map(str::to_owned),
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
    let vol = state
        .volumes
        .get(&id)
        .ok_or_else(|| ApiError::not_found("SoftLayer_Network_Storage", id))?;
    if size < vol.capacity_gb {
        return Err(ApiError::public(format!(
            "Volume {id} is {} GB: its size cannot be decreased to {size} GB.",
            vol.capacity_gb
        )));
    }
    let b = bought(order, size)?;
    if b.tier.map(str::to_owned) != vol.tier {
        return Err(ApiError::public(format!(
            "The upgrade's prices do not match volume {id}'s tier."
        )));
    }
    if !place {
        return Ok(Reply::plain(receipt(None, order)));
    }
    let order_id = state.next_id();
    let vol = state.volumes.get_mut(&id).expect("checked");
    vol.capacity_gb = size;
    if let Some(i) = as_u64(&order["iops"]) {
        vol.iops = vol.iops.map(|_| i);
    }
    Ok(Reply::plain(receipt(Some(order_id), order)))
}
