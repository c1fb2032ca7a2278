//! Nova helpers shared by VM and disk methods: servers, flavors, waits.

use crate::cloud::OpenStack;
use crate::session::{Service, Session};
use crate::types::*;
use crate::waits::{self, Seen, Target};
use cpi::{Error, Result, VmCid};
use reqwest::Method;

pub async fn server(session: &Session, id: &str) -> Result<Option<Server>> {
    Ok(session
        .get::<ServerBody>(Service::Compute, &format!("/servers/{id}"))
        .await?
        .map(|b| b.server))
}

/// The server, or `VMNotFound` when it is missing or deleted.
pub async fn existing_server(session: &Session, vm: &VmCid) -> Result<Server> {
    match server(session, vm.as_str()).await? {
        Some(s) if !s.is_gone() => Ok(s),
        _ => Err(Error::vm_not_found(vm)),
    }
}

pub async fn find_by_name(session: &Session, name: &str) -> Result<Option<Server>> {
    let found: Option<ServersBody> = session
        .get(
            Service::Compute,
            &format!("/servers/detail?name=%5E{name}%24"),
        )
        .await?;
    Ok(found.and_then(|b| {
        b.servers
            .into_iter()
            .find(|s| s.name == name && !s.is_gone())
    }))
}

pub async fn flavor(session: &Session, id: &str) -> Result<Option<Flavor>> {
    Ok(session
        .get::<FlavorBody>(Service::Compute, &format!("/flavors/{id}"))
        .await?
        .map(|b| b.flavor))
}

pub async fn flavor_named(session: &Session, name: &str) -> Result<Flavor> {
    let all: FlavorsBody = session
        .get(Service::Compute, "/flavors/detail")
        .await?
        .ok_or_else(|| Error::cloud("Nova has no flavors API"))?;
    all.flavors
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| {
            Error::cloud(format!(
                "cloud_properties.instance_type: flavor '{name}' not found"
            ))
        })
}

pub async fn wait_status(cloud: &OpenStack, id: &str, status: &str) -> Result<()> {
    let session = cloud.session()?;
    let what = format!("server {id} to become {status}");
    waits::until(
        &what,
        cloud.wait_backoff(),
        Target::Status(&[&status.to_ascii_lowercase()]),
        || async {
            Ok(match server(session, id).await? {
                Some(s) => Seen::Status {
                    status: s.status,
                    fault: s.fault.map(|f| f.message),
                },
                None => Seen::Gone,
            })
        },
    )
    .await
}

/// Deletes the server and waits until Nova no longer has it.
pub async fn delete_and_wait(cloud: &OpenStack, id: &str) -> Result<()> {
    let session = cloud.session()?;
    if !session
        .act(
            Method::DELETE,
            Service::Compute,
            &format!("/servers/{id}"),
            None,
        )
        .await?
    {
        return Ok(());
    }
    waits::until(
        &format!("server {id} to be deleted"),
        cloud.wait_backoff(),
        Target::Gone,
        || async {
            Ok(match server(session, id).await? {
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

pub async fn attachments(session: &Session, vm: &str) -> Result<Vec<Attachment>> {
    let found: Option<AttachmentsBody> = session
        .get(
            Service::Compute,
            &format!("/servers/{vm}/os-volume_attachments"),
        )
        .await?;
    Ok(found.map(|b| b.attachments).unwrap_or_default())
}

/// The smallest flavor with enough CPUs and RAM; when its ephemeral disk is
/// too small, a root disk big enough for the ephemeral data (booted from a
/// volume of that size, as the Ruby CPI asks for it).
pub async fn cloud_properties_for(
    cloud: &OpenStack,
    need: &cpi::VmResources,
) -> Result<cpi::CloudProperties> {
    let (best, root) = smallest_flavor(cloud.session()?, need).await?;
    let mut props = serde_json::json!({"instance_type": best.name});
    if let Some(size) = root {
        props["root_disk"] = serde_json::json!({ "size": size });
    }
    Ok(props.as_object().cloned().unwrap_or_default())
}

/// The smallest flavor with enough CPUs and RAM, and the root disk (GiB)
/// the ephemeral data needs when the flavor's ephemeral disk is too small.
pub async fn smallest_flavor(
    session: &Session,
    need: &cpi::VmResources,
) -> Result<(Flavor, Option<u64>)> {
    let all: FlavorsBody = session
        .get(Service::Compute, "/flavors/detail")
        .await?
        .ok_or_else(|| Error::cloud("Nova has no flavors API"))?;
    let best = all
        .flavors
        .into_iter()
        .filter(|f| f.vcpus >= need.cpu && f.ram >= need.ram)
        .min_by_key(|f| (f.ram, f.vcpus, f.disk))
        .ok_or_else(|| {
            Error::cloud(format!(
                "no flavor has {} CPUs and {} MiB of RAM",
                need.cpu, need.ram
            ))
        })?;
    // The ephemeral data then lives on the root disk: room for it and the OS (3 GiB).
    let root = (best.ephemeral * 1024 < need.ephemeral_disk_size)
        .then(|| need.ephemeral_disk_size.div_ceil(1024) + 3);
    Ok((best, root))
}
