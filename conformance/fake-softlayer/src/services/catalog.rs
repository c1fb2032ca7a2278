//! `SoftLayer_Product_Package::getAllObjects`: the Storage as a Service
//! package (759) with the item and price layout the real catalogue has
//! (capacities as decimal strings, prices restricted by storage space, IOPS
//! or tier level, a location-specific price to skip), and the meaning of
//! each price id, which `placeOrder` checks orders against.

use crate::api::{ApiError, Call, Reply};
use crate::query;
use crate::render::Kind;
use crate::state::State;
use serde_json::{json, Value};

pub const PACKAGE_ID: u64 = 759;

/// Performance space ranges (GB), as the `{min}_{max}_GBS` items.
pub const SPACE_RANGES: [(u64, u64); 11] = [
    (20, 39),
    (40, 79),
    (80, 99),
    (100, 499),
    (500, 999),
    (1000, 1999),
    (2000, 2999),
    (3000, 3999),
    (4000, 7999),
    (8000, 9999),
    (10000, 12000),
];

/// Endurance tiers: keyName, IOPS per GB as in item names, tier level code.
pub const TIERS: [(&str, &str, u64); 4] = [
    ("LOW_INTENSITY_TIER", "0_25", 100),
    ("READHEAVY_TIER", "2", 200),
    ("WRITEHEAVY_TIER", "4", 300),
    ("10_IOPS_PER_GB", "10", 1000),
];

pub const SNAPSHOT_SIZES: [u64; 9] = [5, 10, 20, 40, 80, 100, 250, 500, 1000];

/// What a price id buys.
#[derive(Clone, Debug, PartialEq)]
pub enum Priced {
    Service,
    Block,
    File,
    /// Performance space for a size range.
    PerfSpace(u64, u64),
    /// IOPS, for volumes whose size is in the range.
    PerfIops(u64, u64),
    /// Endurance space for a tier (keyName).
    EnduranceSpace(&'static str),
    Tier(&'static str),
    /// Snapshot space of a size, for a tier (keyName) or for any IOPS.
    Snapshot(u64, Option<&'static str>),
    /// A price of another location group: never valid here.
    OtherLocation,
}

fn price(id: u64, category: &str) -> Value {
    json!({"id": id, "categories": [{"categoryCode": category}], "locationGroupId": null})
}

fn restricted(id: u64, category: &str, kind: &str, min: u64, max: u64) -> Value {
    json!({"id": id, "categories": [{"categoryCode": category}], "locationGroupId": null,
           "capacityRestrictionType": kind, "capacityRestrictionMinimum": min.to_string(),
           "capacityRestrictionMaximum": max.to_string()})
}

/// The package and every price id's meaning.
pub fn package() -> (Value, Vec<(u64, Priced)>) {
    let mut items = Vec::new();
    let mut meaning = Vec::new();
    let mut item = |v: Value| items.push(v);
    // The service itself: one location-group price first, which must be skipped.
    item(
        json!({"id": 1, "keyName": "STORAGE_AS_A_SERVICE", "capacity": "0",
                "itemCategory": {"categoryCode": "storage_as_a_service"},
                "prices": [{"id": 189400, "categories": [{"categoryCode": "storage_as_a_service"}], "locationGroupId": 505},
                           price(189433, "storage_as_a_service")]}),
    );
    meaning.push((189400, Priced::OtherLocation));
    meaning.push((189433, Priced::Service));
    item(
        json!({"id": 2, "keyName": "BLOCK_STORAGE_2", "capacity": "0",
                "itemCategory": {"categoryCode": "storage_block"}, "prices": [price(189443, "storage_block")]}),
    );
    meaning.push((189443, Priced::Block));
    item(
        json!({"id": 3, "keyName": "FILE_STORAGE_2", "capacity": "0",
                "itemCategory": {"categoryCode": "storage_file"}, "prices": [price(189453, "storage_file")]}),
    );
    meaning.push((189453, Priced::File));
    let mut iops_prices = Vec::new();
    for (i, (min, max)) in SPACE_RANGES.iter().enumerate() {
        let id = 190_000 + i as u64;
        item(
            json!({"id": 10 + i as u64, "keyName": format!("{min}_{max}_GBS"), "capacity": "0",
                    "capacityMinimum": min.to_string(), "capacityMaximum": max.to_string(),
                    "itemCategory": {"categoryCode": "performance_storage_space"},
                    "prices": [price(id, "performance_storage_space")]}),
        );
        meaning.push((id, Priced::PerfSpace(*min, *max)));
        let iops_id = 191_000 + i as u64;
        iops_prices.push(restricted(
            iops_id,
            "performance_storage_iops",
            "STORAGE_SPACE",
            *min,
            *max,
        ));
        meaning.push((iops_id, Priced::PerfIops(*min, *max)));
    }
    item(
        json!({"id": 30, "keyName": "100_48000_IOPS", "capacity": "0", "capacityMinimum": "100",
                "capacityMaximum": "48000", "itemCategory": {"categoryCode": "performance_storage_iops"},
                "prices": iops_prices}),
    );
    for (i, (key, per_gb, level)) in TIERS.iter().enumerate() {
        let space_id = 192_000 + i as u64;
        item(
            json!({"id": 40 + i as u64, "keyName": format!("STORAGE_SPACE_FOR_{per_gb}_IOPS_PER_GB"), "capacity": "0",
                    "capacityMinimum": "20", "capacityMaximum": "12000",
                    "itemCategory": {"categoryCode": "performance_storage_space"},
                    "prices": [price(space_id, "performance_storage_space")]}),
        );
        meaning.push((space_id, Priced::EnduranceSpace(key)));
        let tier_id = 193_000 + i as u64;
        item(
            json!({"id": 50 + i as u64, "keyName": key, "capacity": level.to_string(),
                    "itemCategory": {"categoryCode": "storage_tier_level"},
                    "prices": [price(tier_id, "storage_tier_level")]}),
        );
        meaning.push((tier_id, Priced::Tier(key)));
    }
    for (i, size) in SNAPSHOT_SIZES.iter().enumerate() {
        let mut prices = Vec::new();
        for (t, (key, _, level)) in TIERS.iter().enumerate() {
            let id = 194_000 + (i * 10 + t) as u64;
            prices.push(restricted(
                id,
                "storage_snapshot_space",
                "STORAGE_TIER_LEVEL",
                *level,
                *level,
            ));
            meaning.push((id, Priced::Snapshot(*size, Some(key))));
        }
        let id = 195_000 + i as u64;
        prices.push(restricted(id, "storage_snapshot_space", "IOPS", 100, 48000));
        meaning.push((id, Priced::Snapshot(*size, None)));
        item(
            json!({"id": 60 + i as u64, "keyName": format!("{size}_GB_STORAGE_SPACE"), "capacity": size.to_string(),
                    "itemCategory": {"categoryCode": "storage_snapshot_space"}, "prices": prices}),
        );
    }
    let pkg = json!({
        "id": PACKAGE_ID, "name": "Storage As A Service (StaaS)", "statusCode": "ACTIVE",
        "categories": [{"categoryCode": "storage_as_a_service"}], "items": items,
    });
    (pkg, meaning)
}

pub fn meaning_of(price_id: u64) -> Option<Priced> {
    package()
        .1
        .into_iter()
        .find(|(id, _)| *id == price_id)
        .map(|(_, m)| m)
}

pub fn handle(_state: &mut State, call: &Call) -> Result<Reply, ApiError> {
    match call.method.as_str() {
        "getAllObjects" => {
            let all = vec![package().0];
            let list = match &call.filter {
                Some(f) => all.into_iter().filter(|p| query::matches(p, f)).collect(),
                None => all,
            };
            Ok(Reply::of(Kind::Plain, Value::Array(list)))
        }
        "getObject" if call.id == Some(PACKAGE_ID) => Ok(Reply::of(Kind::Plain, package().0)),
        "getObject" => Err(ApiError::not_found(
            "SoftLayer_Product_Package",
            call.id.unwrap_or(0),
        )),
        other => Err(ApiError::no_method("SoftLayer_Product_Package", other)),
    }
}
