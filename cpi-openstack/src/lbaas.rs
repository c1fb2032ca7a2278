//! Octavia pool members for `loadbalancer_pools`: the VM's IP on its default
//! network added to each pool on create (recorded in server metadata
//! `lbaas_pool_N = pool_id/member_id`, as the Ruby CPI records it) and
//! removed again on delete or when the create fails afterwards.

use crate::session::{Service, Session};
use cpi::{Error, Result};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// One entry of `cloud_properties.loadbalancer_pools`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    pub port: u16,
}

#[derive(Deserialize)]
pub(crate) struct Pools {
    pools: Vec<Named>,
}
#[derive(Deserialize)]
pub(crate) struct Named {
    id: String,
}
#[derive(Deserialize)]
pub(crate) struct Members {
    members: Vec<Member>,
}
#[derive(Deserialize)]
pub(crate) struct MemberBody {
    member: Member,
}
#[derive(Deserialize)]
pub(crate) struct Member {
    id: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    protocol_port: u32,
}

/// The metadata key of the `i`th membership.
pub fn metadata_key(i: usize) -> String {
    format!("lbaas_pool_{i}")
}

async fn pool_id(session: &Session, name: &str) -> Result<String> {
    let found: Option<Pools> = session
        .get(Service::LoadBalancer, &format!("/lbaas/pools?name={name}"))
        .await?;
    let pools = found.map(|p| p.pools).unwrap_or_default();
    match pools.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Error::cloud(format!(
            "cloud_properties.loadbalancer_pools: pool '{name}' not found"
        ))),
        _ => Err(Error::cloud(format!(
            "cloud_properties.loadbalancer_pools: {} pools are named '{name}'",
            pools.len()
        ))),
    }
}

async fn find_member(session: &Session, pool: &str, ip: &str, port: u16) -> Result<Option<String>> {
    let found: Option<Members> = session
        .get(
            Service::LoadBalancer,
            &format!("/lbaas/pools/{pool}/members?address={ip}&protocol_port={port}"),
        )
        .await?;
    Ok(found.and_then(|m| {
        m.members
            .into_iter()
            .find(|x| x.address == ip && x.protocol_port == u32::from(port))
            .map(|x| x.id)
    }))
}

/// Adds `ip:port` to the pool; a member already there (a retry, a lost
/// answer) is taken as made. Answers (pool id, member id).
pub async fn add_member(
    session: &Session,
    spec: &PoolSpec,
    ip: &str,
    subnet_id: Option<&str>,
) -> Result<(String, String)> {
    let pool = pool_id(session, &spec.name).await?;
    let mut member = json!({"address": ip, "protocol_port": spec.port});
    if let Some(s) = subnet_id {
        member["subnet_id"] = json!(s);
    }
    let body = json!({ "member": member });
    let path = format!("/lbaas/pools/{pool}/members");
    let made = session
        .create(Service::LoadBalancer, &path, &body, async || {
            Ok(find_member(session, &pool, ip, spec.port)
                .await?
                .map(|id| MemberBody {
                    member: Member {
                        id,
                        address: ip.to_owned(),
                        protocol_port: spec.port.into(),
                    },
                }))
        })
        .await;
    let id = match made {
        Ok(m) => m.member.id,
        Err(e) if e.message().contains("answered 409") => {
            find_member(session, &pool, ip, spec.port)
                .await?
                .ok_or_else(|| e.context(format!("pool '{}'", spec.name)))?
        }
        Err(e) => {
            return Err(e.context(format!("adding {ip}:{} to pool '{}'", spec.port, spec.name)))
        }
    };
    Ok((pool, id))
}

/// Removes a member; one already gone is fine.
pub async fn remove_member(session: &Session, pool: &str, member: &str) -> Result<()> {
    session
        .act(
            Method::DELETE,
            Service::LoadBalancer,
            &format!("/lbaas/pools/{pool}/members/{member}"),
            None,
        )
        .await?;
    Ok(())
}

/// The memberships recorded in a server's metadata.
pub fn recorded(metadata: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    metadata
        .iter()
        .filter(|(k, _)| k.starts_with("lbaas_pool_"))
        .filter_map(|(_, v)| v.split_once('/'))
        .map(|(p, m)| (p.to_owned(), m.to_owned()))
        .collect()
}
