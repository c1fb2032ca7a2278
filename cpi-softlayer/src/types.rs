//! The SoftLayer data types this CPI reads, as the REST API answers them.
//! Numbers the API has been seen to send as strings (`iops`, `lunId`,
//! `snapshotCapacityGb`, ids in some answers) are read in either form.

use cpi::Secret;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A number sent as a JSON number or a decimal string; `null` or `""` is none.
pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok().map(|f| f as u64),
        _ => None,
    })
}

/// A string sent as a string or a number.
pub fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct IdOnly {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub id: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Named {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub id: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyName {
    #[serde(default)]
    pub key_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionStatus {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub friendly_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    #[serde(default)]
    pub transaction_status: Option<TransactionStatus>,
}

impl Transaction {
    pub fn status_name(&self) -> &str {
        self.transaction_status
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .unwrap_or("")
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Subnet {
    #[serde(default)]
    pub netmask: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkComponent {
    #[serde(default)]
    pub primary_ip_address: Option<String>,
    #[serde(default)]
    pub mac_address: Option<String>,
    #[serde(default)]
    pub primary_subnet: Option<Subnet>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Guest {
    #[serde(deserialize_with = "lenient_u64")]
    pub id: Option<u64>,
    #[serde(default)]
    pub provision_date: Option<String>,
    #[serde(default)]
    pub power_state: Option<KeyName>,
    #[serde(default)]
    pub active_transaction: Option<Transaction>,
    #[serde(default)]
    pub primary_backend_ip_address: Option<String>,
    #[serde(default)]
    pub datacenter: Option<Named>,
    #[serde(default)]
    pub primary_backend_network_component: Option<NetworkComponent>,
}

impl Guest {
    pub fn with_id(id: u64) -> Guest {
        Guest {
            id: Some(id),
            provision_date: None,
            power_state: None,
            active_transaction: None,
            primary_backend_ip_address: None,
            datacenter: None,
            primary_backend_network_component: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(deserialize_with = "lenient_u64")]
    pub id: Option<u64>,
    #[serde(default)]
    pub global_identifier: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vlan {
    #[serde(default)]
    pub network_space: Option<String>,
    #[serde(default)]
    pub primary_router: Option<Router>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Router {
    #[serde(default)]
    pub datacenter: Option<Named>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    #[serde(deserialize_with = "lenient_u64")]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub capacity_gb: Option<u64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub lun_id: Option<String>,
    #[serde(default)]
    pub service_resource_backend_ip_address: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub provisioned_iops: Option<u64>,
    #[serde(default)]
    pub storage_tier_level: Option<String>,
    #[serde(default)]
    pub billing_item: Option<IdOnly>,
    #[serde(default)]
    pub storage_type: Option<KeyName>,
    #[serde(default)]
    pub allowed_virtual_guests: Option<Vec<IdOnly>>,
}

impl Volume {
    pub fn allowed_guests(&self) -> Vec<u64> {
        self.allowed_virtual_guests
            .iter()
            .flatten()
            .filter_map(|g| g.id)
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Credential {
    #[serde(default)]
    pub username: Option<String>,
    /// The CHAP password: a `Secret`, registered for scrubbing as it is read.
    #[serde(default)]
    pub password: Option<Secret>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AllowedHost {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub credential: Option<Credential>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReceipt {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub order_id: Option<u64>,
}

/// An answer that is an object or a list of them (`getByIdentifier`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::Many(v) => v,
            OneOrMany::One(t) => vec![t],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_numbers_in_either_form() {
        let v: Volume = serde_json::from_value(
            json!({"id": "12", "capacityGb": 20, "lunId": 3, "iops": "1000"}),
        )
        .unwrap();
        assert_eq!(
            (v.id, v.capacity_gb, v.lun_id.as_deref()),
            (Some(12), Some(20), Some("3"))
        );
        let v: Volume =
            serde_json::from_value(json!({"id": 12, "capacityGb": null, "lunId": ""})).unwrap();
        assert_eq!((v.capacity_gb, v.lun_id), (None, None));
    }
}
