//! Neutron: security groups by name, ports with fixed IPs for manual
//! networks, floating IPs for vip networks.

use crate::session::{Repeat, Service, Session};
use crate::types::*;
use cpi::{Error, Result};
use reqwest::Method;
use serde_json::json;

/// Security group ids for `names` (names or ids); an unknown one is named.
pub async fn security_group_ids(session: &Session, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let all: SecurityGroupsBody = session
        .get(Service::Network, "/security-groups")
        .await?
        .ok_or_else(|| Error::cloud("Neutron has no security-groups API"))?;
    names
        .iter()
        .map(|n| {
            all.security_groups
                .iter()
                .find(|g| &g.name == n || &g.id == n)
                .map(|g| g.id.clone())
                .ok_or_else(|| {
                    Error::cloud(format!("security_groups: security group '{n}' not found"))
                })
        })
        .collect()
}

/// A port on `net_id` with the fixed IP; after an answer that may mean it was
/// made, the port is looked up by name before another try.
pub async fn create_port(
    session: &Session,
    name: &str,
    net_id: &str,
    ip: &str,
    groups: &[String],
    allowed_address_pair: Option<&str>,
) -> Result<Port> {
    let mut port = json!({"name": name, "network_id": net_id, "fixed_ips": [{"ip_address": ip}]});
    if !groups.is_empty() {
        port["security_groups"] = json!(groups);
    }
    if let Some(pair) = allowed_address_pair {
        port["allowed_address_pairs"] = json!([{"ip_address": pair}]);
    }
    let body = json!({ "port": port });
    let made: PortBody = session
        .create(Service::Network, "/ports", &body, async || {
            Ok(find_port(session, name)
                .await?
                .map(|port| PortBody { port }))
        })
        .await?;
    Ok(made.port)
}

/// Whether some port holds `ip` (the VRRP port check).
pub async fn port_with_ip_exists(session: &Session, ip: &str) -> Result<bool> {
    let found: Option<PortsBody> = session
        .get(
            Service::Network,
            &format!("/ports?fixed_ips=ip_address%3D{ip}"),
        )
        .await?;
    Ok(found.is_some_and(|b| !b.ports.is_empty()))
}

async fn find_port(session: &Session, name: &str) -> Result<Option<Port>> {
    let found: Option<PortsBody> = session
        .get(Service::Network, &format!("/ports?name={name}"))
        .await?;
    Ok(found.and_then(|b| b.ports.into_iter().next()))
}

/// The server's ports: those bound to it, and those this CPI made for it
/// (marked with [`mark_owner`]), which stay behind unbound when the server
/// vanished without us.
pub async fn ports_of(session: &Session, server_id: &str) -> Result<Vec<Port>> {
    ports_where(
        session,
        &[
            format!("device_id={server_id}"),
            format!("description={}", owner_mark(server_id)),
        ],
    )
    .await
}

/// The ports bound to a server that exists (the ones we made for it are
/// bound too): one request where [`ports_of`] makes two.
pub async fn bound_ports(session: &Session, server_id: &str) -> Result<Vec<Port>> {
    ports_where(session, &[format!("device_id={server_id}")]).await
}

/// The ports made for a server that is gone (left unbound when Nova lost it).
pub async fn orphaned_ports(session: &Session, server_id: &str) -> Result<Vec<Port>> {
    ports_where(session, &[format!("description={}", owner_mark(server_id))]).await
}

async fn ports_where(session: &Session, filters: &[String]) -> Result<Vec<Port>> {
    let mut ports = Vec::new();
    for filter in filters {
        let found: Option<PortsBody> = session
            .get(Service::Network, &format!("/ports?{filter}"))
            .await?;
        for p in found.map(|b| b.ports).unwrap_or_default() {
            if !ports.iter().any(|x: &Port| x.id == p.id) {
                ports.push(p);
            }
        }
    }
    Ok(ports)
}

fn owner_mark(server_id: &str) -> String {
    format!("bosh-vm-{server_id}")
}

/// Records on the port which server it was made for.
pub async fn mark_owner(session: &Session, port_id: &str, server_id: &str) -> Result<()> {
    let body = json!({"port": {"description": owner_mark(server_id)}});
    session
        .call::<_, serde_json::Value>(
            Method::PUT,
            Service::Network,
            &format!("/ports/{port_id}"),
            &body,
            Repeat::Safe,
        )
        .await?;
    Ok(())
}

/// Deleting a port also releases any floating IP bound to it. Gone is fine.
pub async fn delete_port(session: &Session, id: &str) -> Result<()> {
    session
        .act(
            Method::DELETE,
            Service::Network,
            &format!("/ports/{id}"),
            None,
        )
        .await?;
    Ok(())
}

/// Binds the floating IP `address` to `port_id`.
pub async fn associate_floating_ip(session: &Session, address: &str, port_id: &str) -> Result<()> {
    let found: FloatingIpsBody = session
        .get(
            Service::Network,
            &format!("/floatingips?floating_ip_address={address}"),
        )
        .await?
        .ok_or_else(|| Error::cloud("Neutron has no floatingips API"))?;
    let fip = found.floatingips.first().ok_or_else(|| {
        Error::cloud(format!(
            "vip network: floating IP {address} not allocated to the project"
        ))
    })?;
    let body = json!({"floatingip": {"port_id": port_id}});
    session
        .call::<_, serde_json::Value>(
            Method::PUT,
            Service::Network,
            &format!("/floatingips/{}", fip.id),
            &body,
            Repeat::Safe,
        )
        .await?;
    Ok(())
}
