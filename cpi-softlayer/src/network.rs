//! Networks: which VLANs a guest goes on (from each network's
//! `cloud_properties.vlan_ids`), the private IP a manual network asks for,
//! and the networks answered to the director once the guest has its IPs.

use crate::client::Call;
use crate::cloud::SoftLayer;
use crate::types::{Guest, Vlan};
use cpi::{Error, NetworkType, Networks, Result};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
struct NetworkProps {
    #[serde(default)]
    vlan_ids: Vec<Value>,
    /// Subnets, each standing for its VLAN (the Go CPI's alternative to
    /// `vlan_ids`, taking precedence over it).
    #[serde(default)]
    subnet_ids: Vec<Value>,
    /// For the agent (policy routing on the guest's interfaces): handed to
    /// it unchanged in the network's cloud_properties.
    #[serde(default)]
    #[allow(dead_code)]
    source_policy_routing: Option<bool>,
}

/// Where the guest goes on the network.
#[derive(Debug, Default, PartialEq)]
pub struct Placement {
    pub private_vlan: Option<u64>,
    pub public_vlan: Option<u64>,
    /// The private IP a manual network asks for.
    pub private_ip: Option<String>,
}

fn int_id(raw: &Value, what: &str) -> Result<u64> {
    match raw {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::cloud(format!("{what}: {raw} is not an id (an integer)")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubnetVlan {
    #[serde(default)]
    network_vlan: Option<crate::types::IdOnly>,
}

/// The Go CPI's VLAN rules: every network's `subnet_ids` (or else its
/// `vlan_ids`) name VLANs of the VM's datacenter; at most one private and
/// one public VLAN; a private one is required; no public VLAN makes the
/// guest private-only. (The Go CPI read only dynamic networks' VLANs; here
/// a manual network's count too, and its `ip` is the guest's private IP.)
pub async fn placement(
    cloud: &SoftLayer,
    networks: &Networks,
    datacenter: &str,
) -> Result<Placement> {
    let mut p = Placement::default();
    for (name, net) in networks {
        if net.kind == NetworkType::Vip {
            continue;
        }
        let key = format!("create_vm: networks.{name}.cloud_properties");
        let props: NetworkProps = crate::props::read(&key, &net.cloud_properties)?;
        if net.kind == NetworkType::Manual && p.private_ip.is_none() {
            p.private_ip = net.ip.clone();
        }
        let mut vlans = Vec::new();
        if !props.subnet_ids.is_empty() {
            for raw in &props.subnet_ids {
                let id = int_id(raw, &format!("{key}.subnet_ids"))?;
                let subnet: SubnetVlan = cloud
                    .send(
                        Call::get("SoftLayer_Network_Subnet", Some(id), "getObject")
                            .mask("id,networkVlan[id]"),
                    )
                    .await
                    .map_err(|e| {
                        if e.is_not_found() {
                            Error::cloud(format!(
                                "{key}.subnet_ids: subnet {id} does not exist in this account"
                            ))
                        } else {
                            Error::from(e)
                                .context(format!("{key}.subnet_ids: looking up subnet {id}"))
                        }
                    })?;
                let vlan = subnet.network_vlan.and_then(|v| v.id).ok_or_else(|| {
                    Error::cloud(format!("{key}.subnet_ids: subnet {id} shows no VLAN"))
                })?;
                vlans.push((format!("{key}.subnet_ids"), vlan));
            }
        } else {
            for raw in &props.vlan_ids {
                vlans.push((
                    format!("{key}.vlan_ids"),
                    int_id(raw, &format!("{key}.vlan_ids"))?,
                ));
            }
        }
        for (what, id) in vlans {
            let vlan: Vlan = cloud
                .send(
                    Call::get("SoftLayer_Network_Vlan", Some(id), "getObject")
                        .mask("id,networkSpace,primaryRouter[datacenter[name]]"),
                )
                .await
                .map_err(|e| {
                    if e.is_not_found() {
                        Error::cloud(format!("{what}: VLAN {id} does not exist in this account"))
                    } else {
                        Error::from(e).context(format!("{what}: looking up VLAN {id}"))
                    }
                })?;
            let dc = vlan
                .primary_router
                .and_then(|r| r.datacenter)
                .and_then(|d| d.name);
            if let Some(dc) = dc.filter(|dc| dc != datacenter) {
                return Err(Error::cloud(format!(
                    "{what}: VLAN {id} is in datacenter {dc}, not in cloud_properties.datacenter '{datacenter}'"
                )));
            }
            let (slot, space) = match vlan.network_space.as_deref() {
                Some("PUBLIC") => (&mut p.public_vlan, "public"),
                Some("PRIVATE") => (&mut p.private_vlan, "private"),
                other => {
                    return Err(Error::cloud(format!(
                        "{what}: VLAN {id} has network space {other:?}, neither PRIVATE nor PUBLIC"
                    )))
                }
            };
            match slot {
                Some(existing) if *existing != id => {
                    return Err(Error::cloud(format!(
                        "{what}: VLANs {existing} and {id} are both {space}: a guest has one {space} VLAN"
                    )))
                }
                _ => *slot = Some(id),
            }
        }
    }
    if p.private_vlan.is_none() {
        return Err(Error::cloud(
            "create_vm: networks: no network names a private VLAN (cloud_properties.vlan_ids or subnet_ids): a SoftLayer guest needs one",
        ));
    }
    Ok(p)
}

/// The networks as they are on the guest: a dynamic network gets the IP,
/// netmask and gateway SoftLayer gave it.
pub fn answered(networks: &Networks, guest: &Guest) -> Networks {
    let mut out = networks.clone();
    let component = guest
        .primary_backend_network_component
        .clone()
        .unwrap_or_default();
    let subnet = component.primary_subnet.clone().unwrap_or_default();
    // The MAC is only certain when one network sits on the guest's NIC.
    let single_nic = out.values().filter(|n| n.kind != NetworkType::Vip).count() == 1;
    for net in out.values_mut() {
        if net.kind == NetworkType::Dynamic {
            net.ip = guest
                .primary_backend_ip_address
                .clone()
                .or(component.primary_ip_address.clone());
            net.netmask = net.netmask.take().or(subnet.netmask.clone());
            net.gateway = net.gateway.take().or(subnet.gateway.clone());
        }
        if single_nic && net.kind != NetworkType::Vip && net.mac.is_none() {
            net.mac = component.mac_address.clone();
        }
    }
    out
}

/// The cloud_properties keys read (for the README's parity table test).
#[cfg(test)]
pub(crate) fn fields() -> &'static [&'static str] {
    crate::props::fields_of::<NetworkProps>()
}
