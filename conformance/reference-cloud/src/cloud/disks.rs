//! Persistent disks: a record and a data directory; attaching records the
//! VM and, for registry VMs, updates the settings in the registry.

use super::{io, Reference};
use crate::config::Break;
use crate::store::DiskRecord;
use cpi::{CreateDisk, DiskCid, DiskHint, Error, Metadata, Result, VmCid};
use serde_json::{json, Map};

impl Reference {
    fn disk_or_not_found(&self, cid: &DiskCid) -> Result<DiskRecord> {
        self.store
            .disk(cid.as_str())
            .ok_or_else(|| Error::disk_not_found(cid))
    }

    /// Updates the registry's copy of a registry VM's settings.
    async fn registry_update(
        &self,
        vm: &VmCid,
        change: impl FnOnce(&mut agent::Settings),
    ) -> Result<()> {
        let Some(record) = self.store.vm(vm.as_str()) else {
            return Ok(());
        };
        if record.delivery != "registry" {
            return Ok(());
        }
        let registry = self.registry()?;
        let mut settings = registry
            .get(vm)
            .await?
            .ok_or_else(|| Error::cloud(format!("the registry holds no settings for VM {vm}")))?;
        change(&mut settings);
        registry.put(vm, &settings).await
    }
}

impl cpi::Disks for Reference {
    async fn create_disk(&self, args: CreateDisk) -> Result<DiskCid> {
        if args.size_mb == 0 {
            return Err(Error::cpi("create_disk: size must be more than 0 MiB"));
        }
        self.request("create_volume").await?;
        let cid = format!("disk-{}", uuid::Uuid::new_v4().simple());
        io(
            "making the disk",
            std::fs::create_dir_all(self.store.disk_data(&cid)),
        )?;
        let record = DiskRecord {
            size_mb: args.size_mb,
            ..DiskRecord::default()
        };
        io("saving the disk", self.store.put_disk(&cid, &record))?;
        Ok(DiskCid::new(cid))
    }

    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        self.request("delete_volume").await?;
        let Some(record) = self.store.disk(cid.as_str()) else {
            return Ok(());
        };
        if let Some(vm) = record.attached_to {
            return Err(Error::cloud(format!(
                "delete_disk: disk {cid} is attached to VM {vm}"
            )));
        }
        io(
            format!("deleting disk {cid}"),
            std::fs::remove_dir_all(self.store.disk_dir(cid.as_str())),
        )
    }

    async fn has_disk(&self, cid: DiskCid) -> Result<bool> {
        self.request("describe_volume").await?;
        Ok(self.store.disk(cid.as_str()).is_some())
    }

    async fn attach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<DiskHint> {
        self.request("attach_volume").await?;
        if self.store.vm(vm.as_str()).is_none() {
            return Err(Error::vm_not_found(&vm));
        }
        let mut record = self.disk_or_not_found(&disk)?;
        match &record.attached_to {
            Some(other) if other != vm.as_str() => {
                return Err(Error::cloud(format!(
                    "attach_disk: disk {disk} is attached to VM {other}"
                )))
            }
            _ => {}
        }
        if self.broken(Break::SingleAttach) {
            for other in self.store.disks_of(vm.as_str()) {
                if let Some(mut d) = self.store.disk(&other) {
                    d.attached_to = None;
                    io("detaching a disk", self.store.put_disk(&other, &d))?;
                }
            }
        }
        if self.broken(Break::DiskDataLostOnReattach) {
            let data = self.store.disk_data(disk.as_str());
            let _ = std::fs::remove_dir_all(&data);
            io("resetting the disk", std::fs::create_dir_all(&data))?;
        }
        let index = self.store.disks_of(vm.as_str()).len() as u8;
        let path = format!("/dev/sd{}", (b'c' + index) as char);
        record.attached_to = Some(vm.to_string());
        io(
            "attaching the disk",
            self.store.put_disk(disk.as_str(), &record),
        )?;
        let hint = json!({"path": path, "volume_id": disk});
        self.registry_update(&vm, |s| s.attach_persistent(&disk, hint.clone()))
            .await?;
        if self.broken(Break::AttachEmptyHint) {
            return Ok(DiskHint::Path(String::new()));
        }
        let mut obj = Map::new();
        obj.insert("path".into(), json!(path));
        obj.insert("volume_id".into(), json!(disk));
        Ok(DiskHint::Object(obj))
    }

    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        self.request("detach_volume").await?;
        let mut record = self.disk_or_not_found(&disk)?;
        if record.attached_to.as_deref() != Some(vm.as_str()) {
            return Err(Error::disk_not_attached(&vm, &disk));
        }
        record.attached_to = None;
        io(
            "detaching the disk",
            self.store.put_disk(disk.as_str(), &record),
        )?;
        self.registry_update(&vm, |s| {
            s.detach_persistent(&disk);
        })
        .await
    }

    async fn get_disks(&self, vm: VmCid) -> Result<Vec<DiskCid>> {
        self.request("describe_volumes").await?;
        Ok(self
            .store
            .disks_of(vm.as_str())
            .into_iter()
            .map(DiskCid::new)
            .collect())
    }

    async fn resize_disk(&self, cid: DiskCid, new_size_mb: u64) -> Result<()> {
        self.request("modify_volume").await?;
        let mut record = self.disk_or_not_found(&cid)?;
        if new_size_mb < record.size_mb {
            return Err(Error::not_supported(format!(
                "resize_disk: disk {cid} is {} MiB; shrinking it to {new_size_mb} MiB is not possible",
                record.size_mb
            )));
        }
        record.size_mb = new_size_mb;
        io(
            "resizing the disk",
            self.store.put_disk(cid.as_str(), &record),
        )
    }

    async fn set_disk_metadata(&self, cid: DiskCid, metadata: Metadata) -> Result<()> {
        self.request("tag_volume").await?;
        let mut record = self.disk_or_not_found(&cid)?;
        record.metadata.extend(metadata.0);
        io(
            "saving metadata",
            self.store.put_disk(cid.as_str(), &record),
        )
    }
}
