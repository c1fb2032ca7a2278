//! Networks of a `create_vm`: which one carries the subnet, its security
//! groups (names or ids), the ENI made for it, and the elastic IP of a vip.

use crate::errors::{is_not_found, retry_on, sdk};
use crate::props::NetworkProps;
use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, NetworkInterface, ResourceType};
use aws_sdk_ec2::Client;
use cpi::wait::{self, Backoff};
use cpi::{Error, Network, NetworkType, Networks, Result};
use std::time::Duration;

/// What the networks ask for: one manual or dynamic network on a subnet,
/// optionally a vip.
pub struct NetPlan {
    pub name: String,
    pub network: Network,
    pub subnet: String,
    pub security_groups: Option<Vec<String>>,
    pub vip: Option<String>,
}

pub fn plan(networks: &Networks) -> Result<NetPlan> {
    let mut primary = None;
    let mut vip = None;
    for (name, net) in networks {
        match net.kind {
            NetworkType::Vip => {
                let ip = net.ip.clone().ok_or_else(|| {
                    Error::cpi(format!(
                        "create_vm: networks.{name}.ip: missing for vip network"
                    ))
                })?;
                if vip.replace(ip).is_some() {
                    return Err(Error::cpi(
                        "create_vm: networks: only one vip network is supported",
                    ));
                }
            }
            NetworkType::Manual | NetworkType::Dynamic => {
                if primary.is_some() {
                    return Err(Error::cpi(format!(
                        "create_vm: networks.{name}: only one manual or dynamic network is supported"
                    )));
                }
                let props: NetworkProps = cpi::typed(
                    &format!("create_vm: networks.{name}.cloud_properties"),
                    &net.cloud_properties,
                )?;
                let subnet = props.subnet.filter(|s| !s.is_empty()).ok_or_else(|| {
                    Error::cpi(format!(
                        "create_vm: networks.{name}.cloud_properties.subnet: missing"
                    ))
                })?;
                if net.kind == NetworkType::Manual && net.ip.as_deref().unwrap_or("").is_empty() {
                    return Err(Error::cpi(format!(
                        "create_vm: networks.{name}.ip: missing for manual network"
                    )));
                }
                primary = Some((name.clone(), net.clone(), subnet, props.security_groups));
            }
        }
    }
    let (name, network, subnet, security_groups) = primary.ok_or_else(|| {
        Error::cpi("create_vm: networks: needs one manual or dynamic network with a subnet")
    })?;
    Ok(NetPlan {
        name,
        network,
        subnet,
        security_groups,
        vip,
    })
}

pub struct SubnetInfo {
    pub availability_zone: String,
    pub vpc_id: String,
}

pub async fn subnet(ec2: &Client, network: &str, id: &str) -> Result<SubnetInfo> {
    let out = send!("DescribeSubnets", ec2.describe_subnets().subnet_ids(id)).await;
    let out = match out {
        Err(e) if is_not_found(&e) => {
            return Err(Error::cloud(format!(
                "networks.{network}.cloud_properties.subnet: subnet '{id}' not found"
            )))
        }
        other => other?,
    };
    let s = out.subnets().first().ok_or_else(|| {
        Error::cloud(format!(
            "networks.{network}.cloud_properties.subnet: subnet '{id}' not found"
        ))
    })?;
    Ok(SubnetInfo {
        availability_zone: s.availability_zone().unwrap_or_default().to_owned(),
        vpc_id: s.vpc_id().unwrap_or_default().to_owned(),
    })
}

/// Security group ids for a list of names or ids (`sg-…`), names looked up
/// in the VPC.
pub async fn security_group_ids(ec2: &Client, vpc: &str, groups: &[String]) -> Result<Vec<String>> {
    let (ids, names): (Vec<String>, Vec<String>) =
        groups.iter().cloned().partition(|g| g.starts_with("sg-"));
    if names.is_empty() {
        return Ok(ids);
    }
    let out = send!(
        "DescribeSecurityGroups",
        ec2.describe_security_groups()
            .filters(Filter::builder().name("vpc-id").values(vpc).build())
            .filters(
                Filter::builder()
                    .name("group-name")
                    .set_values(Some(names.clone()))
                    .build(),
            )
    )
    .await?;
    let mut resolved = ids;
    for name in &names {
        let id = out
            .security_groups()
            .iter()
            .find(|g| g.group_name() == Some(name))
            .and_then(|g| g.group_id())
            .ok_or_else(|| {
                Error::cloud(format!("security group '{name}' not found in VPC {vpc}"))
            })?;
        resolved.push(id.to_owned());
    }
    Ok(resolved)
}

pub struct Eni {
    pub id: String,
    pub mac: Option<String>,
    pub ip: Option<String>,
}

/// The VM's network interface, made before the instance so that its MAC
/// can go into the agent settings. An IP still held by a VM being deleted
/// (`InvalidIPAddress.InUse`) is retried for a while.
pub async fn create_eni(
    ec2: &Client,
    subnet: &str,
    ip: Option<&str>,
    groups: &[String],
    client_token: &str,
) -> Result<Eni> {
    let in_use = Backoff::new(
        Duration::from_secs(1),
        Duration::from_secs(10),
        Duration::from_secs(90),
    );
    let req = ec2
        .create_network_interface()
        .subnet_id(subnet)
        .set_private_ip_address(ip.map(str::to_owned))
        .set_groups((!groups.is_empty()).then(|| groups.to_vec()))
        .client_token(client_token)
        .tag_specifications(crate::create::tagged(
            ResourceType::NetworkInterface,
            &[],
            client_token,
        ));
    let eni = |ni: &NetworkInterface| Eni {
        id: ni.network_interface_id().unwrap_or_default().to_owned(),
        mac: ni.mac_address().map(str::to_owned),
        ip: ni.private_ip_address().map(str::to_owned),
    };
    wait::retry(
        "CreateNetworkInterface",
        in_use,
        retry_on(&["InvalidIPAddress.InUse"]),
        || {
            crate::create::once(
                "CreateNetworkInterface",
                || async {
                    let out = req
                        .clone()
                        .send()
                        .await
                        .map_err(sdk("CreateNetworkInterface"))?;
                    out.network_interface().map(eni).ok_or_else(|| {
                        Error::cloud(
                            "CreateNetworkInterface: the response has no network interface",
                        )
                    })
                },
                || async {
                    let out = send!(
                        "DescribeNetworkInterfaces",
                        ec2.describe_network_interfaces()
                            .filters(crate::create::token_filter(client_token))
                    )
                    .await?;
                    Ok(out.network_interfaces().first().map(eni))
                },
            )
        },
    )
    .await
}

pub async fn disable_source_dest_check(ec2: &Client, eni: &str) -> Result<()> {
    send!(
        "ModifyNetworkInterfaceAttribute",
        ec2.modify_network_interface_attribute()
            .network_interface_id(eni)
            .source_dest_check(AttributeBooleanValue::builder().value(false).build())
    )
    .await?;
    Ok(())
}

/// Deletes an ENI; missing is success; still attached is retried while the
/// instance it was on terminates.
pub async fn delete_eni(ec2: &Client, id: &str) -> Result<()> {
    let backoff = Backoff::new(
        Duration::from_secs(1),
        Duration::from_secs(10),
        Duration::from_secs(300),
    );
    let r = wait::retry(
        format!("DeleteNetworkInterface {id}"),
        backoff,
        retry_on(&["InvalidNetworkInterface.InUse", "IncorrectState"]),
        || async {
            send!(
                "DeleteNetworkInterface",
                ec2.delete_network_interface().network_interface_id(id)
            )
            .await
        },
    )
    .await;
    match r {
        Err(e) if is_not_found(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Associates the elastic IP of a vip network with the instance.
pub async fn associate_vip(ec2: &Client, instance: &str, ip: &str) -> Result<()> {
    let out = send!("DescribeAddresses", ec2.describe_addresses().public_ips(ip))
        .await
        .map_err(|e| e.context(format!("elastic IP {ip} of the vip network")))?;
    let address = out.addresses().first().ok_or_else(|| {
        Error::cloud(format!(
            "elastic IP {ip} of the vip network is not allocated in this account"
        ))
    })?;
    let mut req = ec2
        .associate_address()
        .instance_id(instance)
        .allow_reassociation(true);
    req = match address.allocation_id() {
        Some(a) => req.allocation_id(a),
        None => req.public_ip(ip),
    };
    send!("AssociateAddress", req).await?;
    Ok(())
}

/// Takes any elastic IP off the instance.
pub async fn disassociate_addresses(ec2: &Client, instance: &str) -> Result<()> {
    let out = send!(
        "DescribeAddresses",
        ec2.describe_addresses().filters(
            Filter::builder()
                .name("instance-id")
                .values(instance)
                .build(),
        )
    )
    .await?;
    for a in out.addresses() {
        if let Some(assoc) = a.association_id() {
            match send!(
                "DisassociateAddress",
                ec2.disassociate_address().association_id(assoc)
            )
            .await
            {
                Err(e) if !is_not_found(&e) => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Points each advertised route at the instance, as the Ruby CPI does: a
/// route for the destination already in the table is replaced, else one is
/// created. Both are idempotent for a retry.
pub async fn advertise_routes(
    ec2: &Client,
    instance: &str,
    routes: &[crate::props::AdvertisedRoute],
) -> Result<()> {
    for r in routes {
        let key = "cloud_properties.advertised_routes";
        let out = send!(
            "DescribeRouteTables",
            ec2.describe_route_tables().route_table_ids(&r.table_id)
        )
        .await;
        let out = match out {
            Err(e) if is_not_found(&e) => {
                return Err(Error::cpi(format!(
                    "create_vm: {key}: route table '{}' not found",
                    r.table_id
                )))
            }
            other => other?,
        };
        let table = out.route_tables().first().ok_or_else(|| {
            Error::cpi(format!(
                "create_vm: {key}: route table '{}' not found",
                r.table_id
            ))
        })?;
        let exists = table
            .routes()
            .iter()
            .any(|x| x.destination_cidr_block() == Some(r.destination.as_str()));
        if exists {
            send!(
                "ReplaceRoute",
                ec2.replace_route()
                    .route_table_id(&r.table_id)
                    .destination_cidr_block(&r.destination)
                    .instance_id(instance)
            )
            .await?;
        } else {
            send!(
                "CreateRoute",
                ec2.create_route()
                    .route_table_id(&r.table_id)
                    .destination_cidr_block(&r.destination)
                    .instance_id(instance)
            )
            .await
            .map_err(|e| e.context(format!("{key}: {} in {}", r.destination, r.table_id)))?;
        }
    }
    Ok(())
}
