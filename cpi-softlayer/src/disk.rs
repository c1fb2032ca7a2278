//! Persistent disks are iSCSI block volumes (storage as a service): ordered
//! in the guest's datacenter, authorised per guest, cancelled through their
//! billing item. Attach answers the iSCSI target and CHAP credentials the
//! agent needs.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, GUEST, STORAGE};
use crate::pricing::{Speed, Tier};
use crate::types::{lenient_u64, AllowedHost, Guest, IdOnly};
use crate::volume::{size_gb, NEW_ORDER, RESIZABLE, SIZE_NOTE, UPGRADE_ORDER};
use cpi::wait;
use cpi::{CreateDisk, DiskCid, DiskHint, Disks, Error, Metadata, Result, VmCid};
use serde::Deserialize;
use serde_json::{json, Map, Value};

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
    /// Read and unused by the Go CPI: refused, `iops` or `tier` choose.
    #[serde(default, rename = "type")]
    disk_type: Option<Value>,
}

impl DiskProps {
    /// IOPS (performance) or a tier (endurance); the default is 2 IOPS per GB.
    fn speed(&self) -> Result<Speed> {
        match (&self.tier, self.iops) {
            (Some(raw), _) => {
                let text = match raw {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Tier::parse(&text).map(Speed::Tier).ok_or_else(|| {
                    Error::cpi(format!(
                        "create_disk: cloud_properties.tier: '{text}' is not an endurance tier (0.25, 2, 4 or 10 IOPS per GB)"
                    ))
                })
            }
            (None, Some(iops)) => Ok(Speed::Iops(iops)),
            (None, None) => Ok(Speed::Tier(crate::pricing::TIERS[1])),
        }
    }
}

impl Disks for SoftLayer {
    async fn create_disk(&self, args: CreateDisk) -> Result<DiskCid> {
        let props: DiskProps =
            crate::props::read("create_disk: cloud_properties", &args.cloud_properties)?;
        if let Some(t) = &props.disk_type {
            return Err(Error::cpi(format!(
                "create_disk: cloud_properties.type: {t} is not supported: choose the volume with iops (performance) or tier (endurance)"
            )));
        }
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
        let speed = props.speed()?;
        let location = self.datacenter_id(&datacenter).await?;
        let package = self
            .storage_package()
            .await
            .map_err(|e| e.context("create_disk"))?;
        let snapshot = props.snapshot_space.filter(|s| *s > 0);
        let prices = package
            .new_volume(gb, speed, snapshot)
            .map_err(|e| e.context("create_disk"))?;
        let mut order = json!({
            "complexType": NEW_ORDER, "packageId": package.id, "location": location.to_string(), "quantity": 1,
            "volumeSize": gb, "osFormatType": {"keyName": "LINUX"}, "useHourlyPricing": true,
            "prices": prices.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
        });
        if let Speed::Iops(iops) = speed {
            order["iops"] = json!(iops);
        }
        let order_id = self.order_volume(order, "create_disk").await?;
        tracing::info!("create_disk: volume of {gb} GB ordered in {datacenter} (order {order_id})");
        let waits = self.config.waits;
        let filter = json!({"iscsiNetworkStorage": {"billingItem": {"orderItem": {"order": {"id": {"operation": order_id}}}}}});
        let id = wait::wait_for(
            format!("the volume of order {order_id} to be provisioned"),
            waits.poll(waits.disk_ready),
            || async {
                let found: Vec<IdOnly> = self
                    .send(
                        Call::get("SoftLayer_Account", None, "getIscsiNetworkStorage")
                            .mask("id")
                            .filter(filter.clone()),
                    )
                    .await?;
                let id = found.into_iter().find_map(|v| v.id);
                if id.is_none() {
                    tracing::info!("create_disk: order {order_id}: volume not provisioned yet");
                }
                Ok(id)
            },
        )
        .await;
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                let mut message = format!("create_disk: order {order_id}: {}", e.message());
                match self.cancel_ordered(order_id).await {
                    Ok(()) => message.push_str(" (its volume was cancelled)"),
                    Err(c) => message.push_str(&format!(" (cancelling its volume failed too: {}; cancel order {order_id}'s volume by hand)", c.message())),
                }
                return Err(Error::new(e.kind(), message).retry(e.ok_to_retry()));
            }
        };
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
            .run(
                Call::post(
                    "SoftLayer_Billing_Item",
                    Some(billing),
                    "cancelItem",
                    reason.as_array().cloned().unwrap_or_default(),
                )
                // Sent again after a lost answer it finds the item gone: success.
                .idempotent(),
            )
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
        let granted = !vol.allowed_guests().contains(&vm_id);
        if granted {
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
        match self.finish_attach(&vm, vm_id, &disk, &vol).await {
            Ok(hint) => Ok(hint),
            // A grant this call made is taken back, so that a failed
            // attach_disk leaves the volume as it found it.
            Err(e) if granted => {
                let revoke = self
                    .run(
                        Call::post(
                            STORAGE,
                            vol.id,
                            "removeAccessFromVirtualGuest",
                            vec![json!({"id": vm_id})],
                        )
                        .idempotent(),
                    )
                    .await;
                let confirmed = match revoke {
                    Ok(()) => true,
                    Err(_) => self
                        .volume(&disk, "id,allowedVirtualGuests[id]")
                        .await
                        .is_ok_and(|v| !v.allowed_guests().contains(&vm_id)),
                };
                let note = if confirmed {
                    " (the volume's authorisation for the guest was removed)"
                } else {
                    " (removing the volume's authorisation for the guest failed too: detach_disk finishes it)"
                };
                Err(Error::new(e.kind(), format!("{}{note}", e.message())).retry(e.ok_to_retry()))
            }
            Err(e) => Err(e),
        }
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
        let removed = self
            .run(
                Call::post(
                    STORAGE,
                    vol.id,
                    "removeAccessFromVirtualGuest",
                    vec![json!({"id": vm_id})],
                )
                .idempotent(),
            )
            .await;
        if let Err(e) = removed {
            // A resend after a lost answer is refused ("not authorized"):
            // what counts is whether the grant is gone.
            let gone = self
                .volume(&disk, "id,allowedVirtualGuests[id]")
                .await
                .is_ok_and(|v| !v.allowed_guests().contains(&vm_id));
            if !gone {
                return Err(or_not_found(e, || Error::vm_not_found(&vm))
                    .context(format!("detach_disk {disk}")));
            }
        }
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
            let speed = match (
                vol.provisioned_iops,
                vol.storage_tier_level.as_deref().and_then(Tier::parse),
            ) {
                (_, Some(tier)) => Speed::Tier(tier),
                (Some(iops), None) => Speed::Iops(iops),
                (None, None) => {
                    return Err(Error::cloud(format!(
                        "resize_disk {cid}: the volume shows neither its tier nor its IOPS"
                    )))
                }
            };
            let package = self
                .storage_package()
                .await
                .map_err(|e| e.context("resize_disk"))?;
            let prices = package
                .upgrade(want, speed)
                .map_err(|e| e.context("resize_disk"))?;
            let mut order = json!({"complexType": UPGRADE_ORDER, "packageId": package.id, "quantity": 1,
                                   "volume": {"id": vol.id}, "volumeSize": want,
                                   "prices": prices.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()});
            if let Speed::Iops(iops) = speed {
                order["iops"] = json!(iops);
            }
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

impl SoftLayer {
    /// After the grant: the guest's initiator and CHAP credentials, the
    /// registry copy (stemcell API v1), the hint.
    async fn finish_attach(
        &self,
        vm: &VmCid,
        vm_id: u64,
        disk: &DiskCid,
        vol: &crate::types::Volume,
    ) -> Result<DiskHint> {
        let host: Option<AllowedHost> = self
            .send(
                Call::get(GUEST, Some(vm_id), "getAllowedHost")
                    .mask("name,credential[username,password]"),
            )
            .await
            .map_err(|e| or_not_found(e, || Error::vm_not_found(vm)).context("attach_disk"))?;
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
        self.update_registry(vm, |s| s.attach_persistent(disk, hint.clone()))
            .await
            .map_err(|e| e.context(format!("attach_disk {disk}: updating the registry")))?;
        tracing::info!("attach_disk: volume {disk} authorised for guest {vm}");
        Ok(DiskHint::Object(
            hint.as_object().cloned().unwrap_or_default(),
        ))
    }
}

/// The cloud_properties keys read (for the README's parity table test).
#[cfg(test)]
pub(crate) fn fields() -> &'static [&'static str] {
    crate::props::fields_of::<DiskProps>()
}
