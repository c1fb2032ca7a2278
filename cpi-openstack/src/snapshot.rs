//! Disk snapshots as Cinder snapshots.

use crate::cloud::OpenStack;
use crate::disk::{create_once, delete_request, volume};
use crate::session::{Service, Session};
use crate::types::*;
use crate::waits::{self, Seen, Target};
use cpi::*;
use serde_json::{json, Map, Value};

async fn snapshot_status(session: &Session, id: &str) -> Result<Option<Snapshot>> {
    Ok(session
        .get::<SnapshotBody>(Service::Volume, &format!("/snapshots/{id}"))
        .await?
        .map(|b| b.snapshot))
}

async fn wait_snapshot(cloud: &OpenStack, id: &str, target: Target<'_>, what: &str) -> Result<()> {
    let session = cloud.session()?;
    waits::until(
        &format!("snapshot {id} to {what}"),
        cloud.wait_backoff(),
        target,
        || async {
            Ok(match snapshot_status(session, id).await? {
                Some(s) => Seen::Status {
                    status: s.status,
                    fault: None,
                },
                None => Seen::Gone,
            })
        },
    )
    .await
}

pub async fn create(cloud: &OpenStack, disk: &DiskCid, metadata: &Metadata) -> Result<SnapshotCid> {
    let session = cloud.session()?;
    volume(session, disk.as_str())
        .await?
        .ok_or_else(|| Error::disk_not_found(disk))?;
    let name = format!("snapshot-{}", uuid::Uuid::new_v4());
    let description = ["deployment", "job", "index"]
        .iter()
        .filter_map(|k| metadata.get(k))
        .collect::<Vec<_>>()
        .join("/");
    let values: Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    // The metadata goes with the create (as the Go CPI sends it): one
    // request less than a separate POST .../metadata.
    let body = json!({"snapshot": {"volume_id": disk.as_str(), "name": name, "description": description,
        "force": true, "metadata": values}});
    let id = create_once(
        session,
        "/snapshots",
        &body,
        &format!("/snapshots/detail?name={name}"),
        |b: SnapshotBody| b.snapshot.id,
        |b: SnapshotsBody| b.snapshots.into_iter().next().map(|s| s.id),
    )
    .await?;
    let finish = async {
        wait_snapshot(
            cloud,
            &id,
            Target::Status(&["available"]),
            "become available",
        )
        .await?;
        Ok::<_, Error>(())
    };
    if let Err(e) = finish.await {
        let removed = async {
            delete_request(session, &format!("/snapshots/{id}")).await?;
            wait_snapshot(cloud, &id, Target::Gone, "be deleted").await
        };
        if let Err(e) = removed.await {
            tracing::warn!("cleaning up snapshot {id}: {}", e.message());
        }
        return Err(e);
    }
    Ok(SnapshotCid::new(id))
}

pub async fn delete(cloud: &OpenStack, cid: &SnapshotCid) -> Result<()> {
    let session = cloud.session()?;
    // No GET first (as the Go CPI): a snapshot already gone answers 404.
    if !delete_request(session, &format!("/snapshots/{cid}")).await? {
        return Ok(());
    }
    wait_snapshot(cloud, cid.as_str(), Target::Gone, "be deleted").await
}
