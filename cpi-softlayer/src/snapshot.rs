//! Snapshots of block volumes, in the volume's snapshot space (ordered with
//! `cloud_properties.snapshot_space`). Without it the answer is
//! NotImplemented, which the director skips over, rather than an error that
//! would fail the deploy.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, STORAGE};
use crate::types::IdOnly;
use cpi::{DiskCid, Error, Metadata, Result, SnapshotCid, Snapshots};
use serde_json::json;

/// The key in a snapshot's notes holding the token of the call that made it.
const TOKEN_NOTE: &str = "bosh_request_token";

#[derive(serde::Deserialize)]
struct SnapshotNotes {
    #[serde(default, deserialize_with = "crate::types::lenient_u64")]
    id: Option<u64>,
    #[serde(default)]
    notes: Option<String>,
}

impl Snapshots for SoftLayer {
    async fn snapshot_disk(&self, disk: DiskCid, metadata: Metadata) -> Result<SnapshotCid> {
        let id = self.disk_id(&disk)?;
        // The notes carry this call's token: a createSnapshot whose answer
        // is lost is looked up by it before it is sent again.
        let token = format!("bosh-{}", uuid::Uuid::new_v4().simple());
        let mut notes: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        notes.insert(TOKEN_NOTE.into(), json!(token));
        let notes = serde_json::Value::Object(notes).to_string();
        let lookup = || async {
            let snaps: Vec<SnapshotNotes> = self
                .send(Call::get(STORAGE, Some(id), "getSnapshots").mask("id,notes"))
                .await?;
            Ok(snaps
                .into_iter()
                .find(|s| s.notes.as_deref().is_some_and(|n| n.contains(&token)))
                .map(|s| IdOnly { id: s.id }))
        };
        let snap: IdOnly = self
            .create_marked(
                Call::post(STORAGE, Some(id), "createSnapshot", vec![json!(notes)]),
                lookup,
            )
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
