//! Persistent disks: EBS volumes in the VM's zone, attached at the first
//! free `/dev/sd[f-p]`, with the hint the agent resolves on Xen and Nitro.

use crate::cloud::{tags, Aws};
use crate::create;
use crate::errors::{is_not_found, retry_on, sdk};
use crate::props::{gib, tag_pairs, DiskProps};
use crate::{instance, instance_types};
use agent::Delivery;
use aws_sdk_ec2::types::{ResourceType, Volume, VolumeAttachmentState, VolumeState, VolumeType};
use aws_sdk_ec2::Client;
use cpi::wait::{self, Backoff};
use cpi::{CreateDisk, DiskCid, DiskHint, Error, Metadata, Result, VmCid};
use serde_json::Value;
use std::time::Duration;

/// Device names for persistent disks, in the order the Ruby CPI uses them.
const DEVICES: &[&str] = &[
    "/dev/sdf", "/dev/sdg", "/dev/sdh", "/dev/sdi", "/dev/sdj", "/dev/sdk", "/dev/sdl", "/dev/sdm",
    "/dev/sdn", "/dev/sdo", "/dev/sdp",
];

/// The volume, or None when EC2 does not know it.
pub async fn find(ec2: &Client, id: &str) -> Result<Option<Volume>> {
    match send!("DescribeVolumes", ec2.describe_volumes().volume_ids(id)).await {
        Ok(out) => Ok(out
            .volumes()
            .iter()
            .find(|v| v.volume_id() == Some(id))
            .cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn get(ec2: &Client, disk: &DiskCid) -> Result<Volume> {
    find(ec2, disk.as_str())
        .await?
        .ok_or_else(|| Error::disk_not_found(disk))
}

/// The instance the volume is attached (or attaching) to, and the device.
fn attachment(v: &Volume) -> Option<(&str, &str)> {
    v.attachments()
        .iter()
        .find(|a| {
            matches!(
                a.state(),
                Some(VolumeAttachmentState::Attached) | Some(VolumeAttachmentState::Attaching)
            )
        })
        .and_then(|a| Some((a.instance_id()?, a.device().unwrap_or(""))))
}

/// `/dev/xvdf` and `/dev/sdf` are the same slot.
fn slot(device: &str) -> &str {
    device
        .trim_start_matches("/dev/")
        .trim_start_matches("xvd")
        .trim_start_matches("sd")
}

fn nvme_path(volume: &str) -> String {
    format!(
        "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{}",
        volume.replace('-', "")
    )
}

impl cpi::Disks for Aws {
    async fn create_disk(&self, args: CreateDisk) -> Result<DiskCid> {
        let props: DiskProps = cpi::typed("create_disk: cloud_properties", &args.cloud_properties)?;
        let ec2 = self.ec2().await?;
        let az = match &args.vm_cid {
            Some(vm) => {
                let i = instance::get(ec2, vm)
                    .await
                    .map_err(|e| e.context("create_disk"))?;
                i.placement()
                    .and_then(|p| p.availability_zone())
                    .map(str::to_owned)
            }
            None => None,
        };
        let az = match az {
            Some(az) => az,
            None => default_zone(ec2).await?,
        };
        let kind = props.kind.clone().unwrap_or_else(|| "gp3".into());
        let encrypted = props.encrypted.unwrap_or(self.config.aws().encrypted);
        let kms = props
            .kms_key_arn
            .clone()
            .or_else(|| self.config.aws().kms_key_arn.clone());
        let token = create::token();
        let mut req = ec2
            .create_volume()
            .size(gib(args.size_mb))
            .availability_zone(&az)
            .volume_type(VolumeType::from(kind.as_str()))
            .set_iops(props.iops)
            .set_throughput(props.throughput)
            .encrypted(encrypted)
            .client_token(&token)
            .tag_specifications(create::tagged(
                ResourceType::Volume,
                &tag_pairs(&props.tags),
                &token,
            ));
        if encrypted {
            req = req.set_kms_key_id(kms);
        }
        let id = create::once(
            "CreateVolume",
            || async {
                let out = req.clone().send().await.map_err(sdk("CreateVolume"))?;
                out.volume_id()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::cloud("CreateVolume: the response has no volume id"))
            },
            || async {
                let out = send!(
                    "DescribeVolumes",
                    ec2.describe_volumes().filters(create::token_filter(&token))
                )
                .await?;
                Ok(out
                    .volumes()
                    .first()
                    .and_then(|v| v.volume_id())
                    .map(str::to_owned))
            },
        )
        .await
        .map_err(|e| e.context("create_disk"))?;
        let ready = wait_volume(ec2, &id, |v| match v.and_then(|v| v.state()) {
            Some(VolumeState::Available) => Ok(true),
            Some(VolumeState::Error) => Err(Error::cloud(format!("volume {id} failed to create"))),
            _ => Ok(false),
        })
        .await;
        if let Err(e) = ready {
            let _ = send!("DeleteVolume", ec2.delete_volume().volume_id(&id)).await;
            return Err(e.context("create_disk"));
        }
        Ok(DiskCid::new(id))
    }

    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        let ec2 = self.ec2().await?;
        let v = get(ec2, &cid).await?;
        if let Some((vm, _)) = attachment(&v) {
            return Err(Error::cloud(format!(
                "delete_disk: disk {cid} is attached to VM {vm}; detach it first"
            )));
        }
        // A volume just detached may still be `in-use` for a moment.
        let backoff = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(15),
            Duration::from_secs(300),
        );
        let r = wait::retry(
            format!("DeleteVolume {cid}"),
            backoff,
            retry_on(&["VolumeInUse", "IncorrectState"]),
            || async { send!("DeleteVolume", ec2.delete_volume().volume_id(cid.as_str())).await },
        )
        .await;
        match r {
            // It was there a moment ago: an earlier attempt whose answer
            // was lost deleted it, which is what was asked.
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map(|_| ()).map_err(|e| e.context("delete_disk")),
        }
    }

    async fn has_disk(&self, cid: DiskCid) -> Result<bool> {
        let ec2 = self.ec2().await?;
        Ok(find(ec2, cid.as_str()).await?.is_some_and(|v| {
            !matches!(
                v.state(),
                Some(VolumeState::Deleted) | Some(VolumeState::Deleting)
            )
        }))
    }

    async fn attach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<DiskHint> {
        let ec2 = self.ec2().await?;
        let i = instance::get(ec2, &vm)
            .await
            .map_err(|e| e.context("attach_disk"))?;
        let v = get(ec2, &disk)
            .await
            .map_err(|e| e.context("attach_disk"))?;
        let device = match attachment(&v) {
            Some((on, device)) if on == vm.as_str() => device.to_owned(),
            Some((on, _)) => {
                return Err(Error::cloud(format!(
                    "attach_disk: disk {disk} is attached to another VM, {on}"
                )))
            }
            None => {
                let used: Vec<&str> = i
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| m.device_name())
                    .map(slot)
                    .collect();
                let device = DEVICES
                    .iter()
                    .find(|d| !used.contains(&slot(d)))
                    .ok_or_else(|| {
                        Error::cloud(format!("attach_disk: VM {vm} has no free device name left"))
                    })?
                    .to_string();
                // A volume just detached from the VM it was on may not be
                // free yet: retried, bounded.
                let backoff = Backoff::new(
                    Duration::from_secs(1),
                    Duration::from_secs(15),
                    Duration::from_secs(300),
                );
                wait::retry(
                    format!("AttachVolume {disk}"),
                    backoff,
                    retry_on(&["IncorrectState", "VolumeInUse"]),
                    || attach_once(ec2, &vm, &disk, &device),
                )
                .await
                .map_err(|e| e.context(format!("attach_disk {disk} to {vm}")))?
            }
        };
        let vm_id = vm.as_str().to_owned();
        wait_volume(ec2, disk.as_str(), |v| {
            Ok(v.and_then(|v| {
                v.attachments()
                    .iter()
                    .find(|a| a.instance_id() == Some(vm_id.as_str()))
            })
            .is_some_and(|a| a.state() == Some(&VolumeAttachmentState::Attached)))
        })
        .await?;
        let instance_type = i.instance_type().map(|t| t.as_str()).unwrap_or("");
        let may_describe = self
            .config
            .aws()
            .enable_describe_instance_types
            .unwrap_or(true);
        let path = if instance_types::uses_nvme(ec2, instance_type, may_describe).await? {
            nvme_path(disk.as_str())
        } else {
            device
        };
        self.update_registry(&vm, |s| {
            s.attach_persistent(&disk, Value::String(path.clone()))
        })
        .await?;
        Ok(DiskHint::Path(path))
    }

    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        let ec2 = self.ec2().await?;
        let v = get(ec2, &disk)
            .await
            .map_err(|e| e.context("detach_disk"))?;
        match attachment(&v) {
            Some((on, _)) if on == vm.as_str() => {}
            _ => {
                instance::get(ec2, &vm)
                    .await
                    .map_err(|e| e.context("detach_disk"))?;
                return Err(Error::disk_not_attached(&vm, &disk).retry(true));
            }
        }
        let detached = send!(
            "DetachVolume",
            ec2.detach_volume()
                .volume_id(disk.as_str())
                .instance_id(vm.as_str())
                .force(false)
        )
        .await;
        if let Err(e) = detached {
            // A retry after a lost answer finds the volume detaching or
            // detached already: that is the answer it lost.
            let still_on = find(ec2, disk.as_str())
                .await?
                .as_ref()
                .and_then(attachment)
                .is_some_and(|(on, _)| on == vm.as_str());
            if still_on {
                return Err(e.context(format!("detach_disk {disk} from {vm}")));
            }
            tracing::info!(
                "detach_disk: {disk} is no longer attached to {vm} ({})",
                e.message()
            );
        }
        let vm_id = vm.as_str().to_owned();
        wait_volume(ec2, disk.as_str(), |v| {
            Ok(v.is_none_or(|v| {
                v.attachments().iter().all(|a| {
                    a.instance_id() != Some(vm_id.as_str())
                        || a.state() == Some(&VolumeAttachmentState::Detached)
                })
            }))
        })
        .await?;
        self.update_registry(&vm, |s| {
            s.detach_persistent(&disk);
        })
        .await
    }

    async fn get_disks(&self, vm: VmCid) -> Result<Vec<DiskCid>> {
        let ec2 = self.ec2().await?;
        let i = instance::get(ec2, &vm)
            .await
            .map_err(|e| e.context("get_disks"))?;
        // Every EBS volume of the VM, root and ephemeral included, as the
        // Ruby CPI answers.
        Ok(i.block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.volume_id()))
            .map(DiskCid::from)
            .collect())
    }

    async fn resize_disk(&self, cid: DiskCid, new_size_mb: u64) -> Result<()> {
        let ec2 = self.ec2().await?;
        let v = get(ec2, &cid).await.map_err(|e| e.context("resize_disk"))?;
        let current = v.size().unwrap_or(0);
        let wanted = gib(new_size_mb);
        if wanted < current {
            return Err(Error::not_supported(format!(
                "resize_disk: disk {cid} is {current} GiB; shrinking it to {wanted} GiB is not possible"
            )));
        }
        if wanted == current {
            return Ok(());
        }
        send!(
            "ModifyVolume",
            ec2.modify_volume().volume_id(cid.as_str()).size(wanted)
        )
        .await
        .map_err(|e| e.context(format!("resize_disk {cid}")))?;
        wait_volume(ec2, cid.as_str(), |v| {
            Ok(v.and_then(|v| v.size()) == Some(wanted))
        })
        .await
    }

    async fn set_disk_metadata(&self, cid: DiskCid, metadata: Metadata) -> Result<()> {
        let ec2 = self.ec2().await?;
        get(ec2, &cid)
            .await
            .map_err(|e| e.context("set_disk_metadata"))?;
        let pairs = tag_pairs(&metadata);
        if pairs.is_empty() {
            return Ok(());
        }
        send!(
            "CreateTags",
            ec2.create_tags()
                .resources(cid.as_str())
                .set_tags(Some(tags(&pairs)))
        )
        .await
        .map_err(|e| e.context(format!("set_disk_metadata {cid}")))?;
        Ok(())
    }
}

/// One AttachVolume. `VolumeInUse` from a retry whose first answer was lost
/// (or from a director's retry) is success when the volume is on this VM
/// (its device is the answer), a clear error at once when it is on another,
/// and worth waiting on while the volume is still detaching elsewhere.
async fn attach_once(ec2: &Client, vm: &VmCid, disk: &DiskCid, device: &str) -> Result<String> {
    let e = match send!(
        "AttachVolume",
        ec2.attach_volume()
            .volume_id(disk.as_str())
            .instance_id(vm.as_str())
            .device(device)
    )
    .await
    {
        Ok(_) => return Ok(device.to_owned()),
        Err(e) => e,
    };
    if !matches!(
        crate::errors::code_of(&e),
        Some("VolumeInUse") | Some("IncorrectState")
    ) {
        return Err(e);
    }
    let v = find(ec2, disk.as_str()).await?;
    match v.as_ref().and_then(attachment) {
        Some((on, dev)) if on == vm.as_str() => Ok(if dev.is_empty() {
            device.to_owned()
        } else {
            dev.to_owned()
        }),
        Some((on, _)) => Err(Error::cloud(format!(
            "attach_disk: disk {disk} is attached to another VM, {on}"
        ))),
        None => Err(e),
    }
}

/// Polls the volume until `done` says so (it gets None when the volume is
/// not visible yet, or gone).
async fn wait_volume(
    ec2: &Client,
    id: &str,
    done: impl Fn(Option<&Volume>) -> Result<bool>,
) -> Result<()> {
    let done = &done;
    wait::wait_for(format!("volume {id}"), Backoff::resource(), || async move {
        let v = find(ec2, id).await?;
        Ok(done(v.as_ref())?.then_some(()))
    })
    .await
}

/// A zone for a disk made without a VM: the first available one.
async fn default_zone(ec2: &Client) -> Result<String> {
    let out = send!(
        "DescribeAvailabilityZones",
        ec2.describe_availability_zones()
    )
    .await?;
    out.availability_zones()
        .iter()
        .find_map(|z| z.zone_name().map(str::to_owned))
        .ok_or_else(|| Error::cloud("create_disk: no availability zone found"))
}

impl Aws {
    /// For stemcell API v1 VMs, keeps the registry's settings in step.
    async fn update_registry(
        &self,
        vm: &VmCid,
        change: impl FnOnce(&mut agent::Settings),
    ) -> Result<()> {
        if Delivery::choose(&self.ctx) != Delivery::Registry {
            return Ok(());
        }
        let Some(registry) = self.registry_client()? else {
            return Ok(());
        };
        if let Some(mut settings) = registry.get(vm).await? {
            change(&mut settings);
            registry.put(vm, &settings).await?;
        }
        Ok(())
    }
}
