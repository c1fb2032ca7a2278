//! Persistent disks are iSCSI block volumes (storage as a service): ordered
//! in the guest's datacenter, authorised per guest, cancelled through their
//! billing item. Attach answers the iSCSI target and CHAP credentials the
//! agent needs; snapshots use the volume's snapshot space.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, GUEST, STORAGE};
use crate::types::{lenient_u64, AllowedHost, Guest, IdOnly, Named, OrderReceipt, Volume};
use agent::{Delivery, RegistryClient};
use cpi::wait;
use cpi::{
    CreateDisk, DiskCid, DiskHint, Disks, Error, Metadata, Result, SnapshotCid, Snapshots, VmCid,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

const PACKAGE: u64 = 759; // Storage as a Service
const NEW_ORDER: &str = "SoftLayer_Container_Product_Order_Network_Storage_AsAService";
const UPGRADE_ORDER: &str = "SoftLayer_Container_Product_Order_Network_Storage_AsAService_Upgrade";
const RESIZABLE: [&str; 2] = ["ENDURANCE_BLOCK_STORAGE", "PERFORMANCE_BLOCK_STORAGE"];
/// Endurance tiers by IOPS per GB, as `cloud_properties.tier` may name them.
const TIERS: [(&str, &str); 4] = [
    ("0.25", "LOW_INTENSITY_TIER"),
    ("2", "READHEAVY_TIER"),
    ("4", "WRITEHEAVY_TIER"),
    ("10", "10_IOPS_PER_GB"),
];

#[derive(Debug, Deserialize)]
struct DiskProps {
    #[serde(default, deserialize_with = "lenient_u64")]
    iops: Option<u64>,
    #[serde(default)]
    tier: Option<Value>,
    /// GB of snapshot space to order with the volume.
    #[serde(default, deserialize_with = "lenient_u64")]
    snapshot_space: Option<u64>,
    #[serde(default)]
    datacenter: Option<String>,
    #[serde(flatten)]
    _rest: Map<String, Value>,
}

/// The key in a volume's notes holding the size the director asked for:
/// SoftLayer sells whole GB from 20 GB up, so the volume's capacity alone
/// cannot tell a shrink from a grow the volume already holds.
const SIZE_NOTE: &str = "bosh_size_mb";

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

fn tier_key(raw: &Value) -> Result<String> {
    let text = match raw {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    TIERS
        .iter()
        .find(|(n, k)| *n == text || k.eq_ignore_ascii_case(&text))
        .map(|(_, k)| (*k).to_owned())
        .ok_or_else(|| {
            Error::cpi(format!(
                "create_disk: cloud_properties.tier: '{text}' is not an endurance tier (0.25, 2, 4 or 10 IOPS per GB)"
            ))
        })
}

impl SoftLayer {
    fn disk_id(&self, cid: &DiskCid) -> Result<u64> {
        numeric_id(cid.as_str()).ok_or_else(|| Error::disk_not_found(cid))
    }

    async fn volume(&self, cid: &DiskCid, mask: &str) -> Result<Volume> {
        let id = self.disk_id(cid)?;
        self.send(Call::get(STORAGE, Some(id), "getObject").mask(mask))
            .await
            .map_err(|e| or_not_found(e, || Error::disk_not_found(cid)))
    }

    async fn datacenter_id(&self, name: &str) -> Result<u64> {
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
    async fn update_registry(
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
    async fn notes(&self, cid: &DiskCid) -> Result<(Volume, Map<String, Value>)> {
        let v = self
            .volume(cid, "id,capacityGb,notes,storageType[keyName]")
            .await?;
        let notes = v
            .notes
            .as_deref()
            .and_then(|n| serde_json::from_str::<Map<String, Value>>(n).ok())
            .unwrap_or_default();
        Ok((v, notes))
    }

    async fn write_notes(&self, cid: &DiskCid, notes: &Map<String, Value>) -> Result<()> {
        let id = self.disk_id(cid)?;
        let text = Value::Object(notes.clone()).to_string();
        self.run(Call::edit(STORAGE, id, json!({"notes": text})))
            .await
            .map_err(|e| or_not_found(e, || Error::disk_not_found(cid)))
    }

    /// Places an order after verifying it, and answers the order id.
    async fn order(&self, order: Value, what: &str) -> Result<u64> {
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

impl Disks for SoftLayer {
    async fn create_disk(&self, args: CreateDisk) -> Result<DiskCid> {
        let props: DiskProps = cpi::typed("create_disk: cloud_properties", &args.cloud_properties)?;
        let gb = size_gb(args.size_mb).map_err(|e| e.context("create_disk"))?;
        let datacenter = match &args.vm_cid {
            Some(vm) => {
                let id = numeric_id(vm.as_str()).ok_or_else(|| Error::vm_not_found(vm))?;
                let g: Guest = self
                    .send(Call::get(GUEST, Some(id), "getObject").mask("id,datacenter[name]"))
                    .await
                    .map_err(|e| or_not_found(e, || Error::vm_not_found(vm)).context("create_disk"))?;
                g.datacenter.and_then(|d| d.name).ok_or_else(|| Error::cloud(format!("create_disk: guest {id} has no datacenter")))?
            }
            None => props.datacenter.clone().ok_or_else(|| {
                Error::cpi("create_disk: cloud_properties.datacenter: needed when the disk is made without a VM")
            })?,
        };
        let location = self.datacenter_id(&datacenter).await?;
        let mut order = json!({
            "complexType": NEW_ORDER, "packageId": PACKAGE, "location": location.to_string(), "quantity": 1,
            "volumeSize": gb, "osFormatType": {"keyName": "LINUX"}, "useHourlyPricing": true,
        });
        match (&props.tier, props.iops) {
            (Some(t), _) => order["prices"] = json!([{"item": {"keyName": tier_key(t)?}}]),
            (None, Some(iops)) => order["iops"] = json!(iops),
            (None, None) => order["prices"] = json!([{"item": {"keyName": "READHEAVY_TIER"}}]),
        }
        if let Some(s) = props.snapshot_space.filter(|s| *s > 0) {
            order["snapshotSize"] = json!(s);
        }
        let order_id = self.order(order, "create_disk").await?;
        tracing::info!("create_disk: volume of {gb} GB ordered in {datacenter} (order {order_id})");
        let waits = self.config.waits;
        let filter = json!({"iscsiNetworkStorage": {"billingItem": {"orderItem": {"order": {"id": {"operation": order_id}}}}}});
        let id = wait::wait_for(format!("the volume of order {order_id} to be provisioned"), waits.poll(waits.disk_ready), || async {
            let found: Vec<IdOnly> = self
                .send(Call::get("SoftLayer_Account", None, "getIscsiNetworkStorage").mask("id").filter(filter.clone()))
                .await?;
            let id = found.into_iter().find_map(|v| v.id);
            if id.is_none() {
                tracing::info!("create_disk: order {order_id}: volume not provisioned yet");
            }
            Ok(id)
        })
        .await
        .map_err(|e| e.context(format!("create_disk: order {order_id} stays on the account; cancel it if it shows up later")))?;
        let cid = DiskCid::new(id.to_string());
        let mut notes = Map::new();
        notes.insert(SIZE_NOTE.into(), json!(args.size_mb.to_string()));
        if let Err(e) = self.write_notes(&cid, &notes).await {
            tracing::warn!(
                "create_disk {cid}: recording the requested size: {} (resize will go by capacity)",
                e.message()
            );
        }
        Ok(cid)
    }

    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        let v = match self
            .volume(&cid, "id,billingItem[id],allowedVirtualGuests[id]")
            .await
        {
            Ok(v) => v,
            Err(e) if e.is(cpi::ErrorKind::DiskNotFound) => {
                tracing::info!("delete_disk {cid}: already gone");
                return Ok(());
            }
            Err(e) => return Err(e.context("delete_disk")),
        };
        if let Some(vm) = v.allowed_guests().first() {
            return Err(Error::cloud(format!(
                "delete_disk {cid}: the disk is still attached to VM {vm}: detach it first"
            )));
        }
        let Some(billing) = v.billing_item.and_then(|b| b.id) else {
            tracing::info!("delete_disk {cid}: already cancelled");
            return Ok(());
        };
        let reason = json!([true, true, "Deleted by BOSH", ""]);
        match self
            .run(Call::post(
                "SoftLayer_Billing_Item",
                Some(billing),
                "cancelItem",
                reason.as_array().cloned().unwrap_or_default(),
            ))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(Error::from(e).context(format!("delete_disk {cid}"))),
        }
    }

    async fn has_disk(&self, cid: DiskCid) -> Result<bool> {
        match self.volume(&cid, "id,billingItem[id]").await {
            // A cancelled volume lingers without its billing item until reclaimed.
            Ok(v) => Ok(v.billing_item.and_then(|b| b.id).is_some()),
            Err(e) if e.is(cpi::ErrorKind::DiskNotFound) => Ok(false),
            Err(e) => Err(e.context("has_disk")),
        }
    }

    async fn attach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<DiskHint> {
        let vol = self
            .volume(
                &disk,
                "id,lunId,serviceResourceBackendIpAddress,allowedVirtualGuests[id]",
            )
            .await
            .map_err(|e| e.context("attach_disk"))?;
        let vm_id = numeric_id(vm.as_str()).ok_or_else(|| Error::vm_not_found(&vm))?;
        if !vol.allowed_guests().contains(&vm_id) {
            self.run(
                Call::post(
                    STORAGE,
                    vol.id,
                    "allowAccessFromVirtualGuest",
                    vec![json!({"id": vm_id})],
                )
                .idempotent(),
            )
            .await
            .map_err(|e| {
                or_not_found(e, || Error::vm_not_found(&vm)).context(format!("attach_disk {disk}"))
            })?;
        }
        let host: Option<AllowedHost> = self
            .send(
                Call::get(GUEST, Some(vm_id), "getAllowedHost")
                    .mask("name,credential[username,password]"),
            )
            .await
            .map_err(|e| or_not_found(e, || Error::vm_not_found(&vm)).context("attach_disk"))?;
        let host = host.ok_or_else(|| {
            Error::cloud(format!(
                "attach_disk: guest {vm} has no iSCSI allowed host after authorisation"
            ))
        })?;
        let cred = host.credential.clone();
        let hint = json!({
            "id": disk.as_str(),
            "volume_id": disk.as_str(),
            "lun": vol.lun_id.clone().unwrap_or_default(),
            "iscsi_settings": {
                "initiator_name": host.name.clone().unwrap_or_default(),
                "target": vol.service_resource_backend_ip_address.clone().unwrap_or_default(),
                "username": cred.as_ref().and_then(|c| c.username.clone()).unwrap_or_default(),
                "password": cred.as_ref().and_then(|c| c.password.as_ref()).map(|p| p.expose().to_owned()).unwrap_or_default(),
            }
        });
        self.update_registry(&vm, |s| s.attach_persistent(&disk, hint.clone()))
            .await?;
        tracing::info!("attach_disk: volume {disk} authorised for guest {vm}");
        Ok(DiskHint::Object(
            hint.as_object().cloned().unwrap_or_default(),
        ))
    }

    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        let vol = self
            .volume(&disk, "id,allowedVirtualGuests[id]")
            .await
            .map_err(|e| e.context("detach_disk"))?;
        let vm_id = numeric_id(vm.as_str()).ok_or_else(|| Error::disk_not_attached(&vm, &disk))?;
        if !vol.allowed_guests().contains(&vm_id) {
            return Err(Error::disk_not_attached(&vm, &disk));
        }
        self.run(Call::post(
            STORAGE,
            vol.id,
            "removeAccessFromVirtualGuest",
            vec![json!({"id": vm_id})],
        ))
        .await
        .map_err(|e| {
            or_not_found(e, || Error::vm_not_found(&vm)).context(format!("detach_disk {disk}"))
        })?;
        self.update_registry(&vm, |s| {
            s.detach_persistent(&disk);
        })
        .await
    }

    async fn get_disks(&self, vm: VmCid) -> Result<Vec<DiskCid>> {
        let id = numeric_id(vm.as_str()).ok_or_else(|| Error::vm_not_found(&vm))?;
        let list: Vec<IdOnly> = self
            .send(Call::get(GUEST, Some(id), "getAllowedNetworkStorage").mask("id"))
            .await
            .map_err(|e| or_not_found(e, || Error::vm_not_found(&vm)).context("get_disks"))?;
        Ok(list
            .into_iter()
            .filter_map(|v| v.id)
            .map(|i| DiskCid::new(i.to_string()))
            .collect())
    }

    async fn resize_disk(&self, cid: DiskCid, new_size_mb: u64) -> Result<()> {
        let (vol, mut notes) = self
            .notes(&cid)
            .await
            .map_err(|e| e.context("resize_disk"))?;
        let capacity = vol.capacity_gb.unwrap_or(0);
        let current_mb = notes
            .get(SIZE_NOTE)
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()))
            .unwrap_or(capacity * 1024);
        if new_size_mb < current_mb {
            return Err(Error::not_supported(format!(
                "resize_disk {cid}: disks cannot shrink ({current_mb} MiB to {new_size_mb} MiB)"
            )));
        }
        let want = size_gb(new_size_mb).map_err(|e| e.context("resize_disk"))?;
        if want > capacity {
            let kind = vol
                .storage_type
                .and_then(|t| t.key_name)
                .unwrap_or_default();
            if !RESIZABLE.contains(&kind.as_str()) {
                return Err(Error::not_supported(format!(
                    "resize_disk {cid}: volumes of type '{kind}' cannot be resized; only storage-as-a-service volumes can: create a new disk"
                )));
            }
            let order = json!({"complexType": UPGRADE_ORDER, "packageId": PACKAGE, "quantity": 1,
                               "volume": {"id": vol.id}, "volumeSize": want});
            let order_id = self.order(order, "resize_disk").await?;
            let waits = self.config.waits;
            wait::wait_for(
                format!("volume {cid} to grow to {want} GB (order {order_id})"),
                waits.poll(waits.disk_ready),
                || async {
                    let v = self.volume(&cid, "id,capacityGb").await?;
                    Ok((v.capacity_gb.unwrap_or(0) >= want).then_some(()))
                },
            )
            .await?;
        } else {
            tracing::info!("resize_disk {cid}: its {capacity} GB already hold {new_size_mb} MiB");
        }
        notes.insert(SIZE_NOTE.into(), json!(new_size_mb.to_string()));
        self.write_notes(&cid, &notes)
            .await
            .map_err(|e| e.context("resize_disk"))
    }

    async fn set_disk_metadata(&self, cid: DiskCid, metadata: Metadata) -> Result<()> {
        let (_, old) = self
            .notes(&cid)
            .await
            .map_err(|e| e.context("set_disk_metadata"))?;
        let mut notes: Map<String, Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        if let Some(size) = old.get(SIZE_NOTE) {
            notes.insert(SIZE_NOTE.into(), size.clone());
        }
        self.write_notes(&cid, &notes)
            .await
            .map_err(|e| e.context("set_disk_metadata"))
    }
}

impl Snapshots for SoftLayer {
    async fn snapshot_disk(&self, disk: DiskCid, metadata: Metadata) -> Result<SnapshotCid> {
        let id = self.disk_id(&disk)?;
        let notes = serde_json::to_string(&metadata.0).map_err(|e| Error::cpi(e.to_string()))?;
        let snap: IdOnly = self
            .send(Call::post(STORAGE, Some(id), "createSnapshot", vec![json!(notes)]))
            .await
            .map_err(|e| {
                if e.message().to_ascii_lowercase().contains("snapshot space") {
                    Error::not_supported(format!(
                        "snapshot_disk {disk}: the volume has no snapshot space; order disks with cloud_properties.snapshot_space to snapshot them ({})",
                        e.message()
                    ))
                } else {
                    or_not_found(e, || Error::disk_not_found(&disk)).context("snapshot_disk")
                }
            })?;
        let sid = snap
            .id
            .ok_or_else(|| Error::cloud("snapshot_disk: createSnapshot answered no id"))?;
        Ok(SnapshotCid::new(sid.to_string()))
    }

    async fn delete_snapshot(&self, cid: SnapshotCid) -> Result<()> {
        let Some(id) = numeric_id(cid.as_str()) else {
            return Ok(());
        };
        match self.run(Call::delete(STORAGE, id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(Error::from(e).context(format!("delete_snapshot {cid}"))),
        }
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

    #[test]
    fn tiers_by_number_or_name() {
        assert_eq!(tier_key(&json!(4)).unwrap(), "WRITEHEAVY_TIER");
        assert_eq!(tier_key(&json!("0.25")).unwrap(), "LOW_INTENSITY_TIER");
        assert!(tier_key(&json!(3))
            .unwrap_err()
            .message()
            .contains("cloud_properties.tier"));
    }
}
