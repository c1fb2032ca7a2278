//! VMs as Nova servers after creation: delete, has, reboot, metadata.

use crate::cloud::OpenStack;
use crate::network;
use crate::nova;
use crate::session::{Repeat, Service};
use agent::RegistryClient;
use cpi::*;
use reqwest::Method;
use serde_json::{json, Map, Value};

pub async fn delete(cloud: &OpenStack, vm: &VmCid) -> Result<()> {
    let session = cloud.session()?;
    let Some(server) = nova::server(session, vm.as_str()).await? else {
        // Gone without us (a lost VM): the ports made for it may remain.
        for port in network::orphaned_ports(session, vm.as_str()).await? {
            network::delete_port(session, &port.id).await?;
        }
        tracing::info!("server {vm} not found: nothing else to delete");
        return Ok(());
    };
    let ports = network::bound_ports(session, vm.as_str()).await?;
    for (pool, member) in crate::lbaas::recorded(&server.metadata) {
        crate::lbaas::remove_member(session, &pool, &member).await?;
    }
    nova::delete_and_wait(cloud, vm.as_str()).await?;
    for port in ports {
        network::delete_port(session, &port.id).await?;
    }
    if let Some(group) = server.metadata.get(crate::server_group::METADATA_KEY) {
        crate::server_group::remove_if_empty(session, group).await?;
    }
    if let Some(cfg) = &cloud.registry {
        let key = server
            .metadata
            .get("registry_key")
            .cloned()
            .unwrap_or(server.name);
        if let Ok(client) = RegistryClient::new(cfg, "registry") {
            if let Err(e) = client.delete(&VmCid::new(key)).await {
                tracing::warn!("removing registry settings: {}", e.message());
            }
        }
    }
    Ok(())
}

pub async fn has(cloud: &OpenStack, vm: &VmCid) -> Result<bool> {
    Ok(nova::server(cloud.session()?, vm.as_str())
        .await?
        .is_some_and(|s| !s.is_gone()))
}

pub async fn reboot(cloud: &OpenStack, vm: &VmCid) -> Result<()> {
    let session = cloud.session()?;
    nova::existing_server(session, vm).await?;
    let soft = async {
        session
            .act(
                Method::POST,
                Service::Compute,
                &format!("/servers/{vm}/action"),
                Some(&json!({"reboot": {"type": "SOFT"}})),
            )
            .await?;
        nova::wait_status(cloud, vm.as_str(), "ACTIVE").await
    };
    if let Err(e) = soft.await {
        tracing::warn!(
            "soft reboot of {vm} failed ({}); rebooting hard",
            e.message()
        );
        session
            .act(
                Method::POST,
                Service::Compute,
                &format!("/servers/{vm}/action"),
                Some(&json!({"reboot": {"type": "HARD"}})),
            )
            .await?;
        nova::wait_status(cloud, vm.as_str(), "ACTIVE").await?;
    }
    Ok(())
}

pub async fn set_metadata(cloud: &OpenStack, vm: &VmCid, metadata: &Metadata) -> Result<()> {
    let session = cloud.session()?;
    let values: Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| (truncate(k), Value::String(truncate(v))))
        .collect();
    if !session
        .act(
            Method::POST,
            Service::Compute,
            &format!("/servers/{vm}/metadata"),
            Some(&json!({"metadata": values})),
        )
        .await?
    {
        return Err(Error::vm_not_found(vm));
    }
    if cloud.opts.human_readable_vm_names {
        let name = metadata.get("name").map(str::to_owned).or_else(|| {
            Some(format!(
                "{}/{}",
                metadata.get("job")?,
                metadata.get("index")?
            ))
        });
        if let Some(name) = name {
            session
                .call::<_, Value>(
                    Method::PUT,
                    Service::Compute,
                    &format!("/servers/{vm}"),
                    &json!({"server": {"name": name}}),
                    Repeat::Safe,
                )
                .await?;
        }
    }
    Ok(())
}

/// Nova keeps at most 255 characters per key and value.
fn truncate(s: &str) -> String {
    s.chars().take(255).collect()
}
