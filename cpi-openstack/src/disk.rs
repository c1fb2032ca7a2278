//! Persistent disks as Cinder volumes, attached through Nova.

use crate::cloud::OpenStack;
use crate::nova;
use crate::session::{Created, Service, Session};
use crate::types::*;
use crate::waits::{self, Seen, Target};
use agent::RegistryClient;
use cpi::*;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Deserialize, Default)]
pub(crate) struct DiskProps {
    #[serde(default, rename = "type")]
    volume_type: Option<String>,
}

pub(crate) async fn volume(session: &Session, id: &str) -> Result<Option<Volume>> {
    Ok(session
        .get::<VolumeBody>(Service::Volume, &format!("/volumes/{id}"))
        .await?
        .map(|b| b.volume))
}

async fn wait_volume(cloud: &OpenStack, id: &str, target: Target<'_>, what: &str) -> Result<()> {
    let session = cloud.session()?;
    waits::until(
        &format!("volume {id} to {what}"),
        cloud.wait_backoff(),
        target,
        || async {
            Ok(match volume(session, id).await? {
                Some(v) => Seen::Status {
                    status: v.status,
                    fault: None,
                },
                None => Seen::Gone,
            })
        },
    )
    .await
}

fn gib(size_mb: u64) -> u64 {
    size_mb.div_ceil(1024)
}

pub async fn create(cloud: &OpenStack, args: CreateDisk) -> Result<DiskCid> {
    if args.size_mb < 1024 {
        return Err(Error::cpi(format!(
            "size: {} MiB is below the minimum of 1024 MiB",
            args.size_mb
        )));
    }
    let props: DiskProps = typed("cloud_properties", &args.cloud_properties)?;
    let session = cloud.session()?;
    let mut vol = json!({"name": format!("volume-{}", uuid::Uuid::new_v4()), "description": "", "size": gib(args.size_mb)});
    if let Some(t) = props.volume_type.or(cloud.opts.default_volume_type.clone()) {
        vol["volume_type"] = json!(t);
    }
    if let (Some(vm), false) = (&args.vm_cid, cloud.opts.ignore_server_availability_zone) {
        let server = nova::existing_server(session, vm).await?;
        if let Some(az) = server.availability_zone.filter(|a| !a.is_empty()) {
            vol["availability_zone"] = json!(az);
        }
    }
    let name = vol["name"].as_str().unwrap_or_default().to_owned();
    let body = json!({ "volume": vol });
    let id = create_once(
        session,
        "/volumes",
        &body,
        &format!("/volumes/detail?name={name}"),
        |b: VolumeBody| b.volume.id,
        |b: VolumesBody| b.volumes.into_iter().next().map(|v| v.id),
    )
    .await?;
    if let Err(e) = wait_volume(
        cloud,
        &id,
        Target::Status(&["available"]),
        "become available",
    )
    .await
    {
        remove_volume(cloud, &id).await;
        return Err(e);
    }
    Ok(DiskCid::new(id))
}

/// POSTs a Cinder create; after a 5xx or a lost answer, looks it up by its
/// unique name (`lookup`, a `detail?name=` listing) before sending it again.
pub(crate) async fn create_once<
    Made: serde::de::DeserializeOwned,
    Found: serde::de::DeserializeOwned,
>(
    session: &Session,
    path: &str,
    body: &Value,
    lookup: &str,
    id_of: impl Fn(Made) -> String,
    found_id: impl Fn(Found) -> Option<String>,
) -> Result<String> {
    let created = session
        .create_or_find::<Made, String>(Service::Volume, path, body, async || {
            Ok(session
                .get::<Found>(Service::Volume, lookup)
                .await?
                .and_then(&found_id))
        })
        .await?;
    Ok(match created {
        Created::Made(made) => id_of(made),
        Created::Found(id) => id,
    })
}

/// DELETE a volume or snapshot (`path`); false when it was not there.
/// Refused because it is already being deleted (an earlier try's answer
/// was lost) counts as done.
pub(crate) async fn delete_request(session: &Session, path: &str) -> Result<bool> {
    match session
        .act(Method::DELETE, Service::Volume, path, None)
        .await
    {
        Ok(found) => Ok(found),
        Err(
            e @ crate::error::OsError::Status {
                status: 400 | 409, ..
            },
        ) => {
            let now: Option<Value> = session.get(Service::Volume, path).await?;
            let status = now
                .as_ref()
                .and_then(|v| v.as_object()?.values().next()?.get("status")?.as_str());
            match status {
                None => Ok(false),
                Some("deleting") => Ok(true),
                Some(_) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Best effort, and waited for, so that nothing is left when we answer.
async fn remove_volume(cloud: &OpenStack, id: &str) {
    let Ok(s) = cloud.session() else { return };
    let removed = async {
        delete_request(s, &format!("/volumes/{id}")).await?;
        wait_volume(cloud, id, Target::Gone, "be deleted").await
    };
    if let Err(e) = removed.await {
        tracing::warn!("cleaning up volume {id}: {}", e.message());
    }
}

pub async fn delete(cloud: &OpenStack, cid: &DiskCid) -> Result<()> {
    let session = cloud.session()?;
    let Some(v) = volume(session, cid.as_str()).await? else {
        tracing::info!("volume {cid} not found: nothing to delete");
        return Ok(());
    };
    if v.status != "available" && v.status != "error" {
        return Err(Error::cloud(format!(
            "volume {cid} is '{}', not available (attached?)",
            v.status
        )));
    }
    delete_request(session, &format!("/volumes/{cid}")).await?;
    wait_volume(cloud, cid.as_str(), Target::Gone, "be deleted").await
}

pub async fn has(cloud: &OpenStack, cid: &DiskCid) -> Result<bool> {
    Ok(volume(cloud.session()?, cid.as_str())
        .await?
        .is_some_and(|v| v.status != "deleted"))
}

pub async fn attach(cloud: &OpenStack, vm: &VmCid, disk: &DiskCid) -> Result<DiskHint> {
    let session = cloud.session()?;
    let server = nova::existing_server(session, vm).await?;
    let vol = volume(session, disk.as_str())
        .await?
        .ok_or_else(|| Error::disk_not_found(disk))?;
    let current = nova::attachments(session, vm.as_str()).await?;
    if let Some(a) = current.iter().find(|a| a.volume_id == disk.as_str()) {
        // Already done (an earlier try whose answer was lost): success.
        let device = a.device.clone().unwrap_or_else(|| "/dev/sdc".into());
        return Ok(DiskHint::Path(device));
    }
    if let Some(other) = vol
        .attachments
        .iter()
        .filter_map(|a| a.server_id.as_deref())
        .find(|s| *s != vm.as_str())
    {
        return Err(Error::cloud(format!(
            "volume {disk} is attached to another server, {other}"
        )));
    }
    let flavor = match server.flavor.as_ref().and_then(|f| f.id.clone()) {
        Some(id) => nova::flavor(session, &id).await?,
        None => None,
    };
    let device = free_device(&current, flavor.as_ref(), cloud.opts.config_drive.is_some());
    let body = json!({"volumeAttachment": {"volumeId": disk.as_str(), "device": device}});
    // Not sent twice: after a lost answer, Nova's list of the server's
    // attachments says whether it was made.
    session
        .create_or_find::<AttachmentBody, ()>(
            Service::Compute,
            &format!("/servers/{vm}/os-volume_attachments"),
            &body,
            async || {
                let now = nova::attachments(session, vm.as_str()).await?;
                Ok(now
                    .iter()
                    .any(|a| a.volume_id == disk.as_str())
                    .then_some(()))
            },
        )
        .await?;
    if let Err(e) = wait_volume(
        cloud,
        disk.as_str(),
        Target::Status(&["in-use"]),
        "be attached",
    )
    .await
    {
        // Do not leave a half-made attachment behind.
        let _ = session
            .act(
                Method::DELETE,
                Service::Compute,
                &format!("/servers/{vm}/os-volume_attachments/{disk}"),
                None,
            )
            .await;
        return Err(e);
    }
    update_registry(cloud, &server, |s| s.attach_persistent(disk, json!(device))).await?;
    Ok(DiskHint::Path(device))
}

/// The first `/dev/sdX` not taken by the root, ephemeral, swap, config drive
/// or another volume (letters compared whatever the sd/vd/xvd prefix).
fn free_device(current: &[Attachment], flavor: Option<&Flavor>, config_drive: bool) -> String {
    let mut taken: Vec<char> = current
        .iter()
        .filter_map(|a| a.device.as_deref())
        .filter_map(|d| d.chars().last())
        .collect();
    taken.push('a');
    let mut reserved = 0;
    if flavor.is_some_and(|f| f.ephemeral > 0) {
        reserved += 1;
    }
    if flavor.is_some_and(Flavor::has_swap) {
        reserved += 1;
    }
    if config_drive {
        reserved += 1;
    }
    let first = (b'b' + reserved) as char;
    let letter = (first..='z').find(|c| !taken.contains(c)).unwrap_or('z');
    format!("/dev/sd{letter}")
}

pub async fn detach(cloud: &OpenStack, vm: &VmCid, disk: &DiskCid) -> Result<()> {
    let session = cloud.session()?;
    let server = nova::existing_server(session, vm).await?;
    let current = nova::attachments(session, vm.as_str()).await?;
    if !current.iter().any(|a| a.volume_id == disk.as_str()) {
        return Err(Error::disk_not_attached(vm, disk));
    }
    session
        .act(
            Method::DELETE,
            Service::Compute,
            &format!("/servers/{vm}/os-volume_attachments/{disk}"),
            None,
        )
        .await?;
    wait_volume(
        cloud,
        disk.as_str(),
        Target::Status(&["available"]),
        "be detached",
    )
    .await?;
    update_registry(cloud, &server, |s| {
        s.detach_persistent(disk);
    })
    .await
}

/// Stemcell API v1 VMs read their disks from the registry: keep it current
/// when the VM has settings there.
async fn update_registry(
    cloud: &OpenStack,
    server: &Server,
    change: impl FnOnce(&mut agent::Settings),
) -> Result<()> {
    let Some(cfg) = &cloud.registry else {
        return Ok(());
    };
    let Ok(client) = RegistryClient::new(cfg, "registry") else {
        return Ok(());
    };
    let key = VmCid::new(
        server
            .metadata
            .get("registry_key")
            .cloned()
            .unwrap_or(server.name.clone()),
    );
    if let Some(mut settings) = client.get(&key).await? {
        change(&mut settings);
        client.put(&key, &settings).await?;
    }
    Ok(())
}

pub async fn list(cloud: &OpenStack, vm: &VmCid) -> Result<Vec<DiskCid>> {
    let session = cloud.session()?;
    nova::existing_server(session, vm).await?;
    Ok(nova::attachments(session, vm.as_str())
        .await?
        .into_iter()
        .map(|a| DiskCid::new(a.volume_id))
        .collect())
}

pub async fn resize(cloud: &OpenStack, cid: &DiskCid, new_size_mb: u64) -> Result<()> {
    let session = cloud.session()?;
    let v = volume(session, cid.as_str())
        .await?
        .ok_or_else(|| Error::disk_not_found(cid))?;
    let new = gib(new_size_mb);
    if new == v.size {
        return Ok(());
    }
    if new < v.size {
        return Err(Error::not_supported(format!(
            "volume {cid} is {} GiB: shrinking to {new} GiB is not possible",
            v.size
        )));
    }
    if !v.attachments.is_empty() || v.status == "in-use" {
        return Err(Error::cloud(format!(
            "volume {cid} is attached: detach it before resizing"
        )));
    }
    let extended = session
        .act(
            Method::POST,
            Service::Volume,
            &format!("/volumes/{cid}/action"),
            Some(&json!({"os-extend": {"new_size": new}})),
        )
        .await;
    if let Err(e) = extended {
        // Refused because an earlier try's lost answer already started it.
        let now = volume(session, cid.as_str()).await?;
        if !now.is_some_and(|v| {
            v.size >= new && matches!(v.status.as_str(), "extending" | "available")
        }) {
            return Err(e.into());
        }
    }
    wait_volume(
        cloud,
        cid.as_str(),
        Target::Status(&["available"]),
        "be extended",
    )
    .await
}

pub async fn set_metadata(cloud: &OpenStack, cid: &DiskCid, metadata: &Metadata) -> Result<()> {
    let values: Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let found = cloud
        .session()?
        .act(
            Method::POST,
            Service::Volume,
            &format!("/volumes/{cid}/metadata"),
            Some(&json!({"metadata": values})),
        )
        .await?;
    if found {
        Ok(())
    } else {
        Err(Error::disk_not_found(cid))
    }
}
