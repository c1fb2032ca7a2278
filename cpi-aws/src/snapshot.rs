//! Disk snapshots: EBS snapshots of a volume, tagged with the metadata.

use crate::cloud::Aws;
use crate::create;
use crate::errors::{is_not_found, sdk};
use crate::props::tag_pairs;
use crate::stemcell::delete_snapshot_quietly;
use aws_sdk_ec2::types::{ResourceType, SnapshotState};
use cpi::wait::{self, Backoff};
use cpi::{DiskCid, Error, Metadata, Result, SnapshotCid};

pub async fn snapshot_disk(aws: &Aws, disk: DiskCid, metadata: Metadata) -> Result<SnapshotCid> {
    let ec2 = aws.ec2().await?;
    let description = ["deployment", "job", "index"]
        .iter()
        .filter_map(|k| metadata.get(k))
        .collect::<Vec<_>>()
        .join("/");
    let token = create::token();
    let req = ec2
        .create_snapshot()
        .volume_id(disk.as_str())
        .description(description)
        .tag_specifications(create::tagged(
            ResourceType::Snapshot,
            &tag_pairs(&metadata),
            &token,
        ));
    let made = create::once(
        "CreateSnapshot",
        || async {
            let out = req.clone().send().await.map_err(sdk("CreateSnapshot"))?;
            out.snapshot_id()
                .map(str::to_owned)
                .ok_or_else(|| Error::cloud("CreateSnapshot: the response has no snapshot id"))
        },
        || create::snapshot_by_token(&ec2, &token),
    )
    .await;
    let id = match made {
        Err(e) if is_not_found(&e) => {
            return Err(Error::disk_not_found(&disk).context("snapshot_disk"))
        }
        other => other.map_err(|e| e.context("snapshot_disk"))?,
    };
    let sid = id.clone();
    let done = wait::wait_for(
        format!("snapshot {id} to complete"),
        Backoff::resource(),
        || {
            let id = sid.clone();
            async move {
                let out = send!(
                    "DescribeSnapshots",
                    ec2.describe_snapshots().snapshot_ids(&id)
                )
                .await?;
                match out.snapshots().first().and_then(|s| s.state()) {
                    Some(SnapshotState::Completed) => Ok(Some(())),
                    Some(SnapshotState::Error) => {
                        Err(Error::cloud(format!("snapshot {id} failed")))
                    }
                    _ => Ok(None),
                }
            }
        },
    )
    .await;
    if let Err(e) = done {
        let _ = delete_snapshot_quietly(ec2, &id).await;
        return Err(e.context("snapshot_disk"));
    }
    Ok(SnapshotCid::new(id))
}

pub async fn delete_snapshot(aws: &Aws, cid: SnapshotCid) -> Result<()> {
    let ec2 = aws.ec2().await?;
    delete_snapshot_quietly(ec2, cid.as_str())
        .await
        .map_err(|e| e.context("delete_snapshot"))
}
