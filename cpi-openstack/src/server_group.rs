//! `openstack.enable_auto_anti_affinity`: each instance group's VMs go into
//! a Nova server group of policy `soft-anti-affinity`, named
//! `<director_uuid>-<bosh.group>`, made on the first create_vm that needs it
//! and removed by the delete_vm that leaves it empty. Two CPIs making the
//! same group at once converge on the one with the smallest id; the other
//! is deleted again.

use crate::session::{Service, Session};
use cpi::Result;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// The server metadata key recording the group a VM was put in.
pub const METADATA_KEY: &str = "bosh_server_group";

#[derive(Deserialize)]
pub(crate) struct Groups {
    server_groups: Vec<Group>,
}
#[derive(Deserialize)]
pub(crate) struct GroupBody {
    server_group: Group,
}
#[derive(Deserialize, Clone)]
pub(crate) struct Group {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    members: Vec<String>,
}

async fn all(session: &Session) -> Result<Vec<Group>> {
    let found: Option<Groups> = session.get(Service::Compute, "/os-server-groups").await?;
    Ok(found.map(|g| g.server_groups).unwrap_or_default())
}

async fn named(session: &Session, name: &str) -> Result<Option<Group>> {
    Ok(all(session)
        .await?
        .into_iter()
        .filter(|g| g.name == name)
        .min_by(|a, b| a.id.cmp(&b.id)))
}

/// The group's id, made when there is none.
pub async fn find_or_create(session: &Session, name: &str) -> Result<String> {
    if let Some(g) = named(session, name).await? {
        return Ok(g.id);
    }
    let body = json!({"server_group": {"name": name, "policies": ["soft-anti-affinity"]}});
    let made: GroupBody = session
        .create(Service::Compute, "/os-server-groups", &body, async || {
            Ok(named(session, name)
                .await?
                .map(|server_group| GroupBody { server_group }))
        })
        .await?;
    // Another CPI may have made one too: keep the smallest id.
    let winner = named(session, name).await?.map(|g| g.id);
    match winner {
        Some(w) if w != made.server_group.id => {
            delete(session, &made.server_group.id).await?;
            Ok(w)
        }
        _ => Ok(made.server_group.id),
    }
}

async fn delete(session: &Session, id: &str) -> Result<()> {
    session
        .act(
            Method::DELETE,
            Service::Compute,
            &format!("/os-server-groups/{id}"),
            None,
        )
        .await?;
    Ok(())
}

/// After a VM left it: removes the group when nothing is in it any more.
pub async fn remove_if_empty(session: &Session, id: &str) -> Result<()> {
    let empty = all(session)
        .await?
        .into_iter()
        .find(|g| g.id == id)
        .is_some_and(|g| g.members.is_empty());
    if empty {
        delete(session, id).await?;
    }
    Ok(())
}
