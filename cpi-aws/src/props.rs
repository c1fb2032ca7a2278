//! `cloud_properties` as operators already write them for the Ruby CPI
//! (`cloud_props.rs` there), typed. Unknown keys are accepted: cloud
//! configs carry keys for features this CPI does not have.

use cpi::Metadata;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
pub struct VmProps {
    #[serde(default)]
    pub instance_type: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub iam_instance_profile: Option<String>,
    #[serde(default)]
    pub placement_group: Option<String>,
    #[serde(default)]
    pub tenancy: Option<String>,
    #[serde(default)]
    pub source_dest_check: Option<bool>,
    #[serde(default)]
    pub auto_assign_public_ip: Option<bool>,
    #[serde(default)]
    pub metadata_options: Option<Value>,
    #[serde(default)]
    pub tags: Metadata,
    #[serde(default)]
    pub ephemeral_disk: Option<EphemeralDisk>,
    #[serde(default)]
    pub root_disk: Option<RootDisk>,
    #[serde(default)]
    pub raw_instance_storage: Option<bool>,
    #[serde(default)]
    pub spot_bid_price: Option<crate::spot::BidPrice>,
    #[serde(default, deserialize_with = "null_false")]
    pub spot_ondemand_fallback: bool,
    /// Classic ELBs to register the instance with, by name.
    #[serde(default, deserialize_with = "null_default")]
    pub elbs: Vec<String>,
    /// ELBv2 target groups to register the instance with, by name.
    #[serde(default, deserialize_with = "null_default")]
    pub lb_target_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub advertised_routes: Vec<AdvertisedRoute>,
}

/// A route pointed at the VM: `destination` (a CIDR) in route table
/// `table_id` of the VM's VPC.
#[derive(Debug, Clone, Deserialize)]
pub struct AdvertisedRoute {
    pub table_id: String,
    pub destination: String,
}

fn null_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Every VM `cloud_properties` key read (nested ones as `a.b`): the
/// reference's list is checked against this and this against the type.
pub const VM_KEYS: &[&str] = &[
    "instance_type",
    "availability_zone",
    "security_groups",
    "key_name",
    "iam_instance_profile",
    "placement_group",
    "tenancy",
    "source_dest_check",
    "auto_assign_public_ip",
    "metadata_options",
    "tags",
    "ephemeral_disk.size",
    "ephemeral_disk.type",
    "ephemeral_disk.iops",
    "ephemeral_disk.throughput",
    "ephemeral_disk.encrypted",
    "ephemeral_disk.kms_key_arn",
    "ephemeral_disk.use_instance_storage",
    "ephemeral_disk.use_root_disk",
    "root_disk.size",
    "root_disk.type",
    "root_disk.iops",
    "root_disk.throughput",
    "raw_instance_storage",
    "spot_bid_price",
    "spot_ondemand_fallback",
    "elbs",
    "lb_target_groups",
    "advertised_routes.table_id",
    "advertised_routes.destination",
];

impl VmProps {
    /// The raw instance storage to map (`raw_instance_storage`), or its
    /// refusal naming the key.
    pub fn raw_storage(
        &self,
        instance_type: &str,
        image: &crate::stemcell::ImageInfo,
    ) -> cpi::Result<crate::instance_storage::Raw> {
        let eph = self.ephemeral_disk.as_ref();
        crate::instance_storage::plan(
            self.raw_instance_storage == Some(true),
            eph.is_some_and(|e| e.use_instance_storage),
            eph.is_some_and(|e| e.use_root_disk),
            instance_type,
            &image.virtualization_type,
        )
    }

    /// The spot market, when `spot_bid_price` asks for it.
    pub fn spot(&self) -> Option<crate::spot::Spot> {
        self.spot_bid_price.clone().map(|bid| crate::spot::Spot {
            bid,
            ondemand_fallback: self.spot_ondemand_fallback,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct EphemeralDisk {
    /// MiB.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub iops: Option<i32>,
    #[serde(default)]
    pub throughput: Option<i32>,
    #[serde(default)]
    pub encrypted: Option<bool>,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    #[serde(default, deserialize_with = "null_false")]
    pub use_instance_storage: bool,
    #[serde(default, deserialize_with = "null_false")]
    pub use_root_disk: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct RootDisk {
    /// MiB.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub iops: Option<i32>,
    #[serde(default)]
    pub throughput: Option<i32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DiskProps {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub iops: Option<i32>,
    #[serde(default)]
    pub throughput: Option<i32>,
    #[serde(default)]
    pub encrypted: Option<bool>,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    #[serde(default)]
    pub tags: Metadata,
}

/// `cloud_properties` of a network.
#[derive(Debug, Default, Deserialize)]
pub struct NetworkProps {
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub security_groups: Option<Vec<String>>,
}

/// `cloud_properties` from `stemcell.MF`.
#[derive(Debug, Default, Deserialize)]
pub struct StemcellProps {
    /// Light stemcells: `{region: ami-id}`.
    #[serde(default)]
    pub ami: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<Value>,
    /// MiB.
    #[serde(default)]
    pub disk: Option<u64>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub virtualization_type: Option<String>,
    #[serde(default)]
    pub root_device_name: Option<String>,
    #[serde(default)]
    pub boot_mode: Option<String>,
    #[serde(default)]
    pub encrypted: Option<bool>,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    #[serde(default)]
    pub tags: Metadata,
}

/// A bool the manifest may leave null (`~`): false, as the Ruby CPI's `!!`.
fn null_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// GiB from MiB, rounded up, at least 1.
pub fn gib(mib: u64) -> i32 {
    mib.div_ceil(1024).max(1).min(i32::MAX as u64) as i32
}

/// EC2 tag values must be strings of at most 256 characters; keys 128.
pub fn tag_pairs(m: &Metadata) -> Vec<(String, String)> {
    m.iter()
        .map(|(k, v)| {
            let key = if k == "name" {
                "Name".to_owned()
            } else {
                k.chars().take(128).collect()
            };
            (key, v.chars().take(256).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_to_gib() {
        assert_eq!(gib(1), 1);
        assert_eq!(gib(1024), 1);
        assert_eq!(gib(1025), 2);
        assert_eq!(gib(0), 1);
    }

    #[test]
    fn name_becomes_name_tag() {
        let m: Metadata =
            serde_json::from_value(serde_json::json!({"name": "web/0", "index": 0})).unwrap();
        let t = tag_pairs(&m);
        assert!(t.contains(&("Name".into(), "web/0".into())));
        assert!(t.contains(&("index".into(), "0".into())));
    }
}
