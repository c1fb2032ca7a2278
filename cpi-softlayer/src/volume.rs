//! Block volumes as the disk methods use them: the GB SoftLayer sells,
//! endurance tiers, lookups, the notes where the CPI keeps the size the
//! director asked for, orders, and the registry copy of the disks.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, STORAGE};
use crate::error::SlError;
use crate::types::{Named, OrderReceipt, Volume};
use agent::{Delivery, RegistryClient};
use cpi::{DiskCid, Error, Result, VmCid};
use serde_json::{json, Map, Value};

pub const NEW_ORDER: &str = "SoftLayer_Container_Product_Order_Network_Storage_AsAService";
pub const UPGRADE_ORDER: &str =
    "SoftLayer_Container_Product_Order_Network_Storage_AsAService_Upgrade";
pub const RESIZABLE: [&str; 2] = ["ENDURANCE_BLOCK_STORAGE", "PERFORMANCE_BLOCK_STORAGE"];
/// The key in a volume's notes holding the size the director asked for:
/// SoftLayer sells whole GB from 20 GB up, so the volume's capacity alone
/// cannot tell a shrink from a grow the volume already holds.
pub const SIZE_NOTE: &str = "bosh_size_mb";

/// A size in MB as the GB SoftLayer sells: 20 to 12000 GB.
pub fn size_gb(size_mb: u64) -> Result<u64> {
    let gb = size_mb.div_ceil(1024).max(20);
    if gb > 12_000 {
        return Err(Error::cpi(format!(
            "{size_mb} MB is more than the 12000 GB a SoftLayer block volume can hold"
        )));
    }
    Ok(gb)
}

impl SoftLayer {
    pub fn disk_id(&self, cid: &DiskCid) -> Result<u64> {
        numeric_id(cid.as_str()).ok_or_else(|| Error::disk_not_found(cid))
    }

    pub async fn volume(&self, cid: &DiskCid, mask: &str) -> Result<Volume> {
        let id = self.disk_id(cid)?;
        self.send(Call::get(STORAGE, Some(id), "getObject").mask(mask))
            .await
            .map_err(|e| or_not_found(e, || Error::disk_not_found(cid)))
    }

    pub async fn datacenter_id(&self, name: &str) -> Result<u64> {
        let found: Vec<Named> = self
            .send(
                Call::get("SoftLayer_Location_Datacenter", None, "getDatacenters")
                    .mask("id,name")
                    .filter(json!({"name": {"operation": name}})),
            )
            .await?;
        found
            .into_iter()
            .find(|d| d.name.as_deref() == Some(name))
            .and_then(|d| d.id)
            .ok_or_else(|| Error::cpi(format!("create_disk: datacenter '{name}' does not exist")))
    }

    /// With stemcell API v1 the registry holds the disks: keep it current.
    pub async fn update_registry(
        &self,
        vm: &VmCid,
        change: impl FnOnce(&mut agent::Settings),
    ) -> Result<()> {
        if Delivery::choose(&self.ctx) != Delivery::Registry {
            return Ok(());
        }
        let Some(reg) = &self.config.registry else {
            return Ok(());
        };
        let client = RegistryClient::new(reg, "cloud.properties.registry")?;
        match client.get(vm).await? {
            Some(mut settings) => {
                change(&mut settings);
                client.put(vm, &settings).await
            }
            None => {
                tracing::warn!("no registry settings for VM {vm}: the agent will not learn of this disk change");
                Ok(())
            }
        }
    }

    /// The volume's notes: a JSON object of strings (metadata and
    /// [`SIZE_NOTE`]); anything else written there by hand is kept aside.
    pub async fn notes(&self, cid: &DiskCid) -> Result<(Volume, Map<String, Value>)> {
        let v = self
            .volume(
                cid,
                "id,capacityGb,notes,provisionedIops,storageTierLevel,storageType[keyName]",
            )
            .await?;
        let notes = v
            .notes
            .as_deref()
            .and_then(|n| serde_json::from_str::<Map<String, Value>>(n).ok())
            .unwrap_or_default();
        Ok((v, notes))
    }

    pub async fn write_notes(&self, cid: &DiskCid, notes: &Map<String, Value>) -> Result<()> {
        let id = self.disk_id(cid)?;
        let text = Value::Object(notes.clone()).to_string();
        self.run(Call::edit(STORAGE, id, json!({"notes": text})))
            .await
            .map_err(|e| or_not_found(e, || Error::disk_not_found(cid)))
    }

    /// Orders a new volume, marked with a per-call token in the order
    /// container's `containerIdentifier`: an order whose answer is lost is
    /// looked up by it (on the account's volumes) before it is placed again.
    pub async fn order_volume(&self, mut order: Value, what: &str) -> Result<u64> {
        let token = format!("bosh-{}", uuid::Uuid::new_v4().simple());
        order["containerIdentifier"] = json!(token);
        self.verify(&order, what).await?;
        let filter = json!({"iscsiNetworkStorage": {"billingItem": {"orderItem": {"order": {"containerIdentifier": {"operation": token}}}}}});
        // An ordered volume is listed only once its provisioning starts:
        // look a few times (within `disk_ready`) before taking an order
        // whose answer was lost for one never placed.
        let waits = self.config.waits;
        let lookup = || async {
            let looked = cpi::wait::wait_for(
                format!("a volume ordered with container identifier {token}"),
                waits.poll(waits.disk_ready).attempts(8),
                || async {
                    let found: Vec<OrderedVolume> = self
                        .send(
                            Call::get("SoftLayer_Account", None, "getIscsiNetworkStorage")
                                .mask("id,billingItem[orderItem[order[id]]]")
                                .filter(filter.clone()),
                        )
                        .await?;
                    Ok(found.into_iter().find_map(|v| {
                        let id = v.billing_item?.order_item?.order?.id?;
                        Some(OrderReceipt { order_id: Some(id) })
                    }))
                },
            )
            .await;
            match looked {
                Ok(receipt) => Ok(Some(receipt)),
                Err(e) if e.message().contains("timed out") => Ok(None),
                Err(e) => Err(SlError::Transport {
                    call: "SoftLayer_Account::getIscsiNetworkStorage".into(),
                    message: e.message().to_owned(),
                    connect: false,
                }),
            }
        };
        let receipt: OrderReceipt = self
            .create_marked(
                Call::post("SoftLayer_Product_Order", None, "placeOrder", vec![order]),
                lookup,
            )
            .await
            .map_err(|e| Error::from(e).context(format!("{what}: placing the order")))?;
        receipt
            .order_id
            .ok_or_else(|| Error::cloud(format!("{what}: the order receipt has no orderId")))
    }

    async fn verify(&self, order: &Value, what: &str) -> Result<()> {
        self.run(
            Call::post(
                "SoftLayer_Product_Order",
                None,
                "verifyOrder",
                vec![order.clone()],
            )
            .idempotent(),
        )
        .await
        .map_err(|e| Error::from(e).context(format!("{what}: SoftLayer refused the order")))
    }

    /// Cancels the volume an order made, found by the order id: for a
    /// create_disk that fails after `placeOrder`. Tried again within
    /// `disk_ready`, as the volume may take a while to be listed.
    pub async fn cancel_ordered(&self, order_id: u64) -> Result<()> {
        let waits = self.config.waits;
        let filter = json!({"iscsiNetworkStorage": {"billingItem": {"orderItem": {"order": {"id": {"operation": order_id}}}}}});
        cpi::wait::retry(
            format!("cancelling the volume of order {order_id}"),
            waits.poll(waits.disk_ready).attempts(10),
            |_: &Error| cpi::wait::Verdict::Retry,
            || async {
                let found: Vec<Volume> = self
                    .send(
                        Call::get("SoftLayer_Account", None, "getIscsiNetworkStorage")
                            .mask("id,billingItem[id]")
                            .filter(filter.clone()),
                    )
                    .await?;
                let Some(v) = found.into_iter().next() else {
                    return Err(Error::cloud(format!(
                        "the volume of order {order_id} is not listed yet"
                    )));
                };
                let Some(item) = v.billing_item.and_then(|b| b.id) else {
                    return Ok(());
                };
                let reason = vec![
                    json!(true),
                    json!(true),
                    json!("Deleted by BOSH"),
                    json!(""),
                ];
                match self
                    .run(
                        Call::post("SoftLayer_Billing_Item", Some(item), "cancelItem", reason)
                            .idempotent(),
                    )
                    .await
                {
                    Ok(()) => Ok(()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            },
        )
        .await
    }

    /// Places an order after verifying it, and answers the order id.
    pub async fn order(&self, order: Value, what: &str) -> Result<u64> {
        self.run(
            Call::post(
                "SoftLayer_Product_Order",
                None,
                "verifyOrder",
                vec![order.clone()],
            )
            .idempotent(),
        )
        .await
        .map_err(|e| Error::from(e).context(format!("{what}: SoftLayer refused the order")))?;
        let receipt: OrderReceipt = self
            .send(Call::post(
                "SoftLayer_Product_Order",
                None,
                "placeOrder",
                vec![order],
            ))
            .await
            .map_err(|e| Error::from(e).context(format!("{what}: placing the order")))?;
        receipt
            .order_id
            .ok_or_else(|| Error::cloud(format!("{what}: the order receipt has no orderId")))
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderedVolume {
    #[serde(default)]
    billing_item: Option<OrderedBilling>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderedBilling {
    #[serde(default)]
    order_item: Option<OrderedItem>,
}

#[derive(serde::Deserialize)]
struct OrderedItem {
    #[serde(default)]
    order: Option<crate::types::IdOnly>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_whole_gb_within_limits() {
        assert_eq!(size_gb(1).unwrap(), 20);
        assert_eq!(size_gb(30 * 1024 + 1).unwrap(), 31);
        assert!(size_gb(12_001 * 1024).is_err());
    }
}
