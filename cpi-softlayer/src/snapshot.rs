//! Snapshots of block volumes, in the volume's snapshot space (ordered with
//! `cloud_properties.snapshot_space`). Without it the answer is
//! NotImplemented, which the director skips over, rather than an error that
//! would fail the deploy.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, STORAGE};
use crate::types::IdOnly;
use cpi::{DiskCid, Error, Metadata, Result, SnapshotCid, Snapshots};
use serde_json::json;

impl Snapshots for SoftLayer {
    async fn snapshot_disk(&self, disk: DiskCid, metadata: Metadata) -> Result<SnapshotCid> {
        let id = self.disk_id(&disk)?;
        let notes = serde_json::to_string(&metadata.0).map_err(|e| Error::cpi(e.to_string()))?;
        let snap: IdOnly = self
            .send(Call::post(STORAGE, Some(id), "createSnapshot", vec![json!(notes)]))
            .await
            .map_err(|e| {
                if e.message().to_ascii_lowercase().contains("snapshot space") {
                    Error::new(cpi::ErrorKind::NotImplemented, format!(
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
