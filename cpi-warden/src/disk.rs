//! Persistent disks: ext4-formatted files under `DisksDir`, loop-mounted at
//! `HostPersistentBindMountsDir/<vm>/<disk>`, which the container sees at
//! `GuestPersistentBindMountsDir/<disk>` through its shared bind mount.

use crate::cloud::Warden;
use crate::ext4_template;
use crate::host::{self, fs_err};
use cpi::{CreateDisk, DiskCid, DiskHint, Error, Metadata, Result, VmCid};
use serde_json::Value;
use std::path::PathBuf;

const MIB: u64 = 1 << 20;

impl Warden {
    fn disk_path(&self, cid: &DiskCid) -> Result<PathBuf> {
        Ok(self
            .config
            .actions
            .disks_dir
            .join(host::entry_name("disk", cid.as_str())?))
    }

    /// Where a disk's metadata is kept: a hidden file beside it, removed with it.
    fn disk_metadata_path(&self, cid: &DiskCid) -> Result<PathBuf> {
        Ok(self.config.actions.disks_dir.join(format!(
            ".{}.metadata.json",
            self.disk_path(cid)?
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
        )))
    }

    fn disk_mount(&self, vm: &VmCid, disk: &DiskCid) -> PathBuf {
        self.host_persistent_dir(vm).join(disk.as_str())
    }

    fn guest_disk_path(&self, disk: &DiskCid) -> String {
        format!(
            "{}/{}",
            self.config
                .actions
                .guest_persistent_bind_mounts_dir
                .trim_end_matches('/'),
            disk
        )
    }

    /// The VM the disk is mounted for, from the host's mount table.
    fn attached_to(&self, disk: &DiskCid) -> Option<VmCid> {
        let root = &self.config.actions.host_persistent_bind_mounts_dir;
        host::mounts_under(root).into_iter().find_map(|m| {
            let rel = m.strip_prefix(root).ok()?;
            let parts: Vec<_> = rel.components().collect();
            (parts.len() == 2 && parts[1].as_os_str() == disk.as_str())
                .then(|| VmCid::new(parts[0].as_os_str().to_string_lossy().into_owned()))
        })
    }
}

impl cpi::Disks for Warden {
    async fn create_disk(&self, args: CreateDisk) -> Result<DiskCid> {
        if args.size_mb == 0 {
            return Err(Error::cpi("create_disk: size must be at least 1 MiB"));
        }
        crate::cloud_props::disk_props(&args.cloud_properties, "create_disk: cloud_properties");
        let cid = DiskCid::new(uuid::Uuid::new_v4().to_string());
        let path = self.disk_path(&cid)?;
        let made = (|| -> Result<()> {
            std::fs::create_dir_all(&self.config.actions.disks_dir)
                .map_err(fs_err("making DisksDir", &self.config.actions.disks_dir))?;
            let size = args.size_mb * MIB;
            let f = std::fs::File::create(&path).map_err(fs_err("creating disk file", &path))?;
            f.set_len(size).map_err(fs_err("sizing disk file", &path))?;
            match ext4_template::template_for(&self.config.actions.disks_dir, size) {
                Ok(t) => t
                    .write_to(&f, &ext4_template::Identity::random())
                    .map_err(fs_err("formatting disk", &path))?,
                Err(e) => {
                    tracing::warn!("formatting with mkfs, not from a template: {e}");
                    host::format_sparse_disk(&path)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(e.context(format!("create_disk {cid}")));
        }
        Ok(cid)
    }

    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        let path = self.disk_path(&cid)?;
        let Some(_lock) = host::lock_disk(&path).await? else {
            let _ = std::fs::remove_file(self.disk_metadata_path(&cid)?);
            return Ok(());
        };
        if let Some(vm) = self.attached_to(&cid) {
            return Err(Error::cpi(format!(
                "delete_disk: disk '{cid}' is attached to VM '{vm}'; detach it first"
            )));
        }
        let _ = std::fs::remove_file(self.disk_metadata_path(&cid)?);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(fs_err("delete_disk", &path)(e).into())
            }
            _ => Ok(()),
        }
    }

    async fn has_disk(&self, cid: DiskCid) -> Result<bool> {
        Ok(self.disk_path(&cid)?.is_file())
    }

    /// The director's order of steps, with one Garden request to read the
    /// settings (which also finds a missing VM) and two to write them.
    async fn attach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<DiskHint> {
        let file = self.disk_path(&disk)?;
        let Some(_lock) = host::lock_disk(&file).await? else {
            return Err(Error::disk_not_found(&disk).context("attach_disk"));
        };
        let guest = self.guest_disk_path(&disk);
        let mounted_here = match self.attached_to(&disk) {
            Some(other) if other != vm => {
                return Err(Error::cloud(format!(
                    "attach_disk: disk '{disk}' is already attached to VM '{other}'"
                )))
            }
            Some(_) => true,
            None => false,
        };
        let target = self.disk_mount(&vm, &disk);
        // The mount (kernel time: reading the filesystem through the loop
        // device) runs beside the settings read (Garden time) when the VM's
        // persistent dir shows it was made here; otherwise, as for a VM that
        // may not exist, settings first, so that nothing is made for it.
        let beside = !mounted_here && self.host_persistent_dir(&vm).is_dir();
        let mounting = beside.then(|| {
            let (file, target) = (file.clone(), target.clone());
            std::thread::spawn(move || host::mount_disk(&file, &target))
        });
        let read = self.current_settings(&vm).await;
        if let Some(m) = mounting {
            let mounted = m
                .join()
                .unwrap_or_else(|_| Err(host::tool_panicked("mounting disk")));
            match (mounted, &read) {
                (Err(e), _) => return Err(Error::from(e).context("attach_disk")),
                (Ok(()), Err(_)) => {
                    let _ = host::unmount_disk(&target);
                }
                (Ok(()), Ok(_)) => {}
            }
        }
        let (mut settings, delivery) = read.map_err(|e| e.context("attach_disk"))?;
        if !mounted_here && !beside {
            host::mount_disk(&file, &target).map_err(|e| Error::from(e).context("attach_disk"))?;
        }
        settings.attach_persistent(&disk, Value::String(guest.clone()));
        if let Err(e) = self.store_settings(&vm, &settings, delivery).await {
            if !mounted_here {
                let _ = host::unmount_disk(&target);
            }
            return Err(e.context(format!(
                "attach_disk {disk} to {vm}: updating agent settings"
            )));
        }
        Ok(DiskHint::Path(guest))
    }

    /// Not mounted for this VM: DiskNotAttached, without asking Garden.
    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        let _lock = host::lock_disk(&self.disk_path(&disk)?).await?;
        let target = self.disk_mount(&vm, &disk);
        if !host::is_mount_point(&target) {
            return Err(Error::disk_not_attached(&vm, &disk));
        }
        let (mut settings, delivery) = self
            .current_settings(&vm)
            .await
            .map_err(|e| e.context(format!("detach_disk {disk} from {vm}")))?;
        settings.detach_persistent(&disk);
        self.store_settings(&vm, &settings, delivery)
            .await
            .map_err(|e| e.context(format!("detach_disk {disk} from {vm}")))?;
        host::unmount_disk(&target).map_err(|e| Error::from(e).context("detach_disk"))
    }

    async fn get_disks(&self, vm: VmCid) -> Result<Vec<DiskCid>> {
        let dir = self.host_persistent_dir(&vm);
        Ok(host::mounts_under(&dir)
            .into_iter()
            .filter(|m| m.parent() == Some(dir.as_path()))
            .filter_map(|m| {
                m.file_name()
                    .map(|n| DiskCid::new(n.to_string_lossy().into_owned()))
            })
            .collect())
    }

    async fn set_disk_metadata(&self, cid: DiskCid, metadata: Metadata) -> Result<()> {
        let Some(_lock) = host::lock_disk(&self.disk_path(&cid)?).await? else {
            return Err(Error::disk_not_found(&cid).context("set_disk_metadata"));
        };
        let path = self.disk_metadata_path(&cid)?;
        let body = serde_json::to_vec(&metadata).map_err(|e| Error::cpi(e.to_string()))?;
        std::fs::write(&path, body).map_err(|e| fs_err("set_disk_metadata", &path)(e).into())
    }

    /// Grows a detached disk and its filesystem, keeping the data.
    async fn resize_disk(&self, cid: DiskCid, new_size_mb: u64) -> Result<()> {
        let path = self.disk_path(&cid)?;
        let Some(_lock) = host::lock_disk(&path).await? else {
            return Err(Error::disk_not_found(&cid).context("resize_disk"));
        };
        let len = std::fs::metadata(&path)
            .map_err(|_| Error::disk_not_found(&cid).context("resize_disk"))?
            .len();
        let current = len / MIB;
        if new_size_mb < current {
            return Err(Error::not_supported(format!(
                "resize_disk: disk '{cid}' is {current} MiB; shrinking it to {new_size_mb} MiB is not supported"
            )));
        }
        if new_size_mb == current {
            return Ok(());
        }
        if let Some(vm) = self.attached_to(&cid) {
            return Err(Error::cpi(format!(
                "resize_disk: disk '{cid}' is attached to VM '{vm}'; detach it first"
            )));
        }
        let p = path.to_string_lossy().into_owned();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(new_size_mb * MIB))
            .map_err(fs_err("resize_disk: growing the file", &path))?;
        // resize2fs wants a freshly checked filesystem; e2fsck exits 1 when it fixed something.
        if let Err(e) = host::tool("checking filesystem", "e2fsck", &["-f", "-p", &p]) {
            tracing::info!("resize_disk: {e}");
        }
        host::tool("growing filesystem", "resize2fs", &[&p])
            .map_err(|e| Error::from(e).context(format!("resize_disk {cid}")))?;
        Ok(())
    }
}
