//! Networks: which VLANs a guest goes on (from each network's
//! `cloud_properties.vlan_ids`), the private IP a manual network asks for,
//! and the networks answered to the director once the guest has its IPs.

use crate::client::Call;
use crate::cloud::SoftLayer;
use crate::types::{Guest, Vlan};
use cpi::{Error, NetworkType, Networks, Result};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Default, Deserialize)]
struct NetworkProps {
    #[serde(default)]
    vlan_ids: Vec<Value>,
    #[serde(default)]
    subnet_ids: Vec<Value>,
    #[serde(default)]
    source_policy_routing: Option<bool>,
    #[serde(flatten)]
    _rest: Map<String, Value>,
}

/// Where the guest goes on the network.
#[derive(Debug, Default, PartialEq)]
pub struct Placement {
    pub private_vlan: Option<u64>,
    pub public_vlan: Option<u64>,
    /// The private IP a manual network asks for.
    pub private_ip: Option<String>,
}

pub async fn placement(
    cloud: &SoftLayer,
    networks: &Networks,
    datacenter: &str,
) -> Result<Placement> {
    let mut p = Placement::default();
    for (name, net) in networks {
        let key = format!("create_vm: networks.{name}.cloud_properties");
        let props: NetworkProps = cpi::typed(&key, &net.cloud_properties)?;
        if !props.subnet_ids.is_empty() || props.source_policy_routing.is_some() {
            tracing::info!("networks.{name}: subnet_ids and source_policy_routing are not used; the VLANs decide");
        }
        if net.kind == NetworkType::Manual && p.private_ip.is_none() {
            p.private_ip = net.ip.clone();
        }
        for raw in &props.vlan_ids {
            let id = match raw {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| {
                Error::cpi(format!(
                    "{key}.vlan_ids: {raw} is not a VLAN id (an integer)"
                ))
            })?;
            let vlan: Vlan = cloud
                .send(
                    Call::get("SoftLayer_Network_Vlan", Some(id), "getObject")
                        .mask("id,networkSpace,primaryRouter[datacenter[name]]"),
                )
                .await
                .map_err(|e| {
                    if e.is_not_found() {
                        Error::cpi(format!(
                            "{key}.vlan_ids: VLAN {id} does not exist in this account"
                        ))
                    } else {
                        Error::from(e).context(format!("{key}.vlan_ids: looking up VLAN {id}"))
                    }
                })?;
            let dc = vlan
                .primary_router
                .and_then(|r| r.datacenter)
                .and_then(|d| d.name);
            if let Some(dc) = dc.filter(|dc| dc != datacenter) {
                return Err(Error::cloud(format!(
                    "{key}.vlan_ids: VLAN {id} is in datacenter {dc}, not in cloud_properties.datacenter '{datacenter}'"
                )));
            }
            let slot = match vlan.network_space.as_deref() {
                Some("PUBLIC") => &mut p.public_vlan,
                _ => &mut p.private_vlan,
            };
            match slot {
                Some(existing) if *existing != id => {
                    tracing::warn!("{key}.vlan_ids: VLAN {id} ignored: VLAN {existing} of the same kind comes first")
                }
                _ => *slot = Some(id),
            }
        }
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
