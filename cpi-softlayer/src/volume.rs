//! Block volumes as the disk methods use them: the GB SoftLayer sells,
//! endurance tiers, lookups, the notes where the CPI keeps the size the
//! director asked for, orders, and the registry copy of the disks.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, STORAGE};
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
