//! Prices for block storage orders, from the Storage as a Service package
//! (`categoryCode` `storage_as_a_service`): the service, block storage,
//! space (a size range for performance, per tier for endurance), IOPS
//! (restricted by the volume's size) or the tier, and snapshot space
//! (restricted by tier level or IOPS). Prices of a location group are
//! regional and skipped.

use crate::client::Call;
use crate::cloud::SoftLayer;
use crate::types::lenient_u64;
use cpi::{Error, Result};
use serde::Deserialize;
use serde_json::json;

/// An endurance tier: its keyName, how item names write its IOPS per GB,
/// and its tier level code (the tier item's capacity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    pub key: &'static str,
    pub per_gb: &'static str,
    pub level: u64,
}

pub const TIERS: [Tier; 4] = [
    Tier {
        key: "LOW_INTENSITY_TIER",
        per_gb: "0_25",
        level: 100,
    },
    Tier {
        key: "READHEAVY_TIER",
        per_gb: "2",
        level: 200,
    },
    Tier {
        key: "WRITEHEAVY_TIER",
        per_gb: "4",
        level: 300,
    },
    Tier {
        key: "10_IOPS_PER_GB",
        per_gb: "10",
        level: 1000,
    },
];

impl Tier {
    /// `0.25`, `2`, `4`, `10` (IOPS per GB) or the keyName.
    pub fn parse(text: &str) -> Option<Tier> {
        let t = text.trim();
        TIERS
            .iter()
            .copied()
            .find(|x| x.per_gb.replace('_', ".") == t || x.key.eq_ignore_ascii_case(t))
    }
}

/// How fast a volume is: provisioned IOPS (performance) or a tier (endurance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    Iops(u64),
    Tier(Tier),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Category {
    #[serde(default)]
    category_code: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Price {
    #[serde(default, deserialize_with = "lenient_u64")]
    id: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    location_group_id: Option<u64>,
    #[serde(default)]
    capacity_restriction_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    capacity_restriction_minimum: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    capacity_restriction_maximum: Option<u64>,
    #[serde(default)]
    categories: Vec<Category>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    capacity: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    capacity_minimum: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    capacity_maximum: Option<u64>,
    #[serde(default)]
    item_category: Option<Category>,
    #[serde(default)]
    prices: Vec<Price>,
}

impl Item {
    fn category(&self) -> &str {
        self.item_category
            .as_ref()
            .and_then(|c| c.category_code.as_deref())
            .unwrap_or("")
    }
    fn key(&self) -> &str {
        self.key_name.as_deref().unwrap_or("")
    }
    fn holds(&self, n: u64) -> bool {
        matches!((self.capacity_minimum, self.capacity_maximum), (Some(min), Some(max)) if min <= n && n <= max)
    }
    /// The item's first price of `category` valid everywhere, within the
    /// restriction when one is given.
    fn price(&self, category: &str, restriction: Option<(&str, u64)>) -> Option<u64> {
        self.prices
            .iter()
            .filter(|p| p.location_group_id.is_none())
            .find_map(|p| {
                let in_category = p
                    .categories
                    .iter()
                    .any(|c| c.category_code.as_deref() == Some(category));
                let allowed = match restriction {
                    None => true,
                    Some((kind, n)) => {
                        p.capacity_restriction_type.as_deref() == Some(kind)
                            && p.capacity_restriction_minimum.is_some_and(|min| min <= n)
                            && p.capacity_restriction_maximum.is_some_and(|max| n <= max)
                    }
                };
                (in_category && allowed).then_some(p.id).flatten()
            })
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Package {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub id: Option<u64>,
    #[serde(default)]
    items: Vec<Item>,
}

impl Package {
    fn find(&self, what: &str, mut pick: impl FnMut(&Item) -> Option<u64>) -> Result<u64> {
        self.items.iter().find_map(&mut pick).ok_or_else(|| {
            Error::cloud(format!(
                "the Storage as a Service package {} sells no {what}",
                self.id.unwrap_or(0)
            ))
        })
    }

    fn by_category(&self, category: &str) -> Result<u64> {
        self.find(category, |i| i.price(category, None))
    }

    fn space(&self, size: u64, speed: Speed) -> Result<u64> {
        match speed {
            Speed::Iops(_) => self.find(&format!("performance space of {size} GB"), |i| {
                let named =
                    i.key() == format!("{}_{}_GBS", i.capacity_minimum?, i.capacity_maximum?);
                (i.category() == "performance_storage_space" && named && i.holds(size))
                    .then(|| i.price("performance_storage_space", None))
                    .flatten()
            }),
            Speed::Tier(t) => {
                let name = format!("STORAGE_SPACE_FOR_{}_IOPS_PER_GB", t.per_gb);
                self.find(&format!("{} space of {size} GB", t.key), |i| {
                    (i.key().contains(&name) && i.holds(size))
                        .then(|| i.price("performance_storage_space", None))
                        .flatten()
                })
            }
        }
    }

    fn speed(&self, size: u64, speed: Speed) -> Result<u64> {
        match speed {
            Speed::Iops(iops) => self.find(&format!("{iops} IOPS for {size} GB"), |i| {
                (i.category() == "performance_storage_iops" && i.holds(iops))
                    .then(|| i.price("performance_storage_iops", Some(("STORAGE_SPACE", size))))
                    .flatten()
            }),
            Speed::Tier(t) => self.find(&format!("tier {}", t.key), |i| {
                (i.category() == "storage_tier_level" && i.capacity == Some(t.level))
                    .then(|| i.price("storage_tier_level", None))
                    .flatten()
            }),
        }
    }

    fn snapshot(&self, gb: u64, speed: Speed) -> Result<u64> {
        let restriction = match speed {
            Speed::Iops(iops) => ("IOPS", iops),
            Speed::Tier(t) => ("STORAGE_TIER_LEVEL", t.level),
        };
        self.find(&format!("snapshot space of {gb} GB"), |i| {
            (i.capacity == Some(gb))
                .then(|| i.price("storage_snapshot_space", Some(restriction)))
                .flatten()
        })
    }

    /// Prices of a new block volume.
    pub fn new_volume(
        &self,
        size: u64,
        speed: Speed,
        snapshot_gb: Option<u64>,
    ) -> Result<Vec<u64>> {
        let mut prices = vec![
            self.by_category("storage_as_a_service")?,
            self.by_category("storage_block")?,
            self.space(size, speed)?,
            self.speed(size, speed)?,
        ];
        if let Some(gb) = snapshot_gb {
            prices.push(self.snapshot(gb, speed)?);
        }
        Ok(prices)
    }

    /// Prices of a volume grown to `size`, at the same speed.
    pub fn upgrade(&self, size: u64, speed: Speed) -> Result<Vec<u64>> {
        Ok(vec![
            self.by_category("storage_as_a_service")?,
            self.space(size, speed)?,
            self.speed(size, speed)?,
        ])
    }
}

const MASK: &str = "id,name,items[id,keyName,capacity,capacityMinimum,capacityMaximum,itemCategory[categoryCode],\
                    prices[id,locationGroupId,capacityRestrictionType,capacityRestrictionMinimum,capacityRestrictionMaximum,categories[categoryCode]]]";

impl SoftLayer {
    /// The active Storage as a Service package with its items and prices.
    pub async fn storage_package(&self) -> Result<Package> {
        let filter = json!({"categories": {"categoryCode": {"operation": "storage_as_a_service"}},
                            "statusCode": {"operation": "ACTIVE"}});
        let found: Vec<Package> = self
            .send(
                Call::get("SoftLayer_Product_Package", None, "getAllObjects")
                    .mask(MASK)
                    .filter(filter),
            )
            .await?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| Error::cloud("no active Storage as a Service package in the catalogue"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> Package {
        serde_json::from_value(json!({"id": 759, "items": [
            {"capacity": "0", "keyName": "", "prices": [
                {"id": 1, "categories": [{"categoryCode": "storage_as_a_service"}], "locationGroupId": 505},
                {"id": 2, "categories": [{"categoryCode": "storage_as_a_service"}], "locationGroupId": ""}]},
            {"capacity": "0", "keyName": "BLOCK", "prices": [{"id": 3, "categories": [{"categoryCode": "storage_block"}], "locationGroupId": null}]},
            {"capacity": "0", "capacityMinimum": "20", "capacityMaximum": "39", "keyName": "20_39_GBS",
             "itemCategory": {"categoryCode": "performance_storage_space"},
             "prices": [{"id": 4, "categories": [{"categoryCode": "performance_storage_space"}], "locationGroupId": null}]},
            {"capacity": "0", "capacityMinimum": "100", "capacityMaximum": "6000", "itemCategory": {"categoryCode": "performance_storage_iops"},
             "prices": [{"id": 5, "capacityRestrictionType": "STORAGE_SPACE", "capacityRestrictionMinimum": "40", "capacityRestrictionMaximum": "79",
                         "categories": [{"categoryCode": "performance_storage_iops"}], "locationGroupId": null},
                        {"id": 6, "capacityRestrictionType": "STORAGE_SPACE", "capacityRestrictionMinimum": "20", "capacityRestrictionMaximum": "39",
                         "categories": [{"categoryCode": "performance_storage_iops"}], "locationGroupId": null}]},
            {"capacity": "20", "keyName": "", "prices": [
                {"id": 7, "capacityRestrictionType": "IOPS", "capacityRestrictionMinimum": "100", "capacityRestrictionMaximum": "6000",
                 "categories": [{"categoryCode": "storage_snapshot_space"}], "locationGroupId": null}]}
        ]}))
        .unwrap()
    }

    #[test]
    fn picks_prices_for_size_iops_and_snapshots_skipping_regional_ones() {
        let p = package()
            .new_volume(30, Speed::Iops(1000), Some(20))
            .unwrap();
        assert_eq!(p, vec![2, 3, 4, 6, 7]);
        let e = package()
            .new_volume(50, Speed::Iops(1000), None)
            .unwrap_err();
        assert!(
            e.message().contains("performance space of 50 GB"),
            "{}",
            e.message()
        );
        let e = package()
            .new_volume(30, Speed::Tier(TIERS[1]), None)
            .unwrap_err();
        assert!(e.message().contains("READHEAVY_TIER"), "{}", e.message());
    }

    #[test]
    fn tiers_by_number_or_name() {
        assert_eq!(Tier::parse("4").unwrap().key, "WRITEHEAVY_TIER");
        assert_eq!(Tier::parse("0.25").unwrap().key, "LOW_INTENSITY_TIER");
        assert_eq!(Tier::parse("readheavy_tier").unwrap().level, 200);
        assert!(Tier::parse("3").is_none());
    }
}
