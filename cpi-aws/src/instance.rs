//! Looking up instances and waiting on their state.

use crate::errors::{is_not_found, retry_on};
use aws_sdk_ec2::types::{Instance, InstanceStateName};
use aws_sdk_ec2::Client;
use cpi::wait::{self, Backoff};
use cpi::{Error, Result, VmCid};

/// The instance, or None when EC2 does not know it.
pub async fn find(ec2: &Client, id: &str) -> Result<Option<Instance>> {
    match send!(
        "DescribeInstances",
        ec2.describe_instances().instance_ids(id)
    )
    .await
    {
        Ok(out) => Ok(out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.instance_id() == Some(id))
            .cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The live instance an earlier RunInstances of this call made, by its
/// `create::TOKEN_TAG`.
pub async fn find_by_token(ec2: &Client, token: &str) -> Result<Option<String>> {
    let out = send!(
        "DescribeInstances",
        ec2.describe_instances()
            .filters(crate::create::token_filter(token))
    )
    .await?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| !is_gone(i))
        .and_then(|i| i.instance_id())
        .map(str::to_owned))
}

pub fn state(i: &Instance) -> Option<&InstanceStateName> {
    i.state().and_then(|s| s.name())
}

pub fn is_gone(i: &Instance) -> bool {
    matches!(
        state(i),
        Some(InstanceStateName::Terminated) | Some(InstanceStateName::ShuttingDown)
    )
}

/// A live instance, or `VMNotFound` when it is missing or terminated.
pub async fn get(ec2: &Client, vm: &VmCid) -> Result<Instance> {
    match find(ec2, vm.as_str()).await? {
        Some(i) if !is_gone(&i) => Ok(i),
        _ => Err(Error::vm_not_found(vm)),
    }
}

/// Waits until the instance is running. A just-created id may not be
/// visible yet (eventual consistency): that is retried, bounded.
pub async fn wait_running(ec2: &Client, id: &str) -> Result<Instance> {
    wait::wait_for(
        format!("instance {id} to be running"),
        Backoff::resource(),
        || async move {
            let found = wait::retry(
                format!("DescribeInstances {id}"),
                Backoff::api(),
                retry_on(&["InvalidInstanceID.NotFound"]),
                || async move {
                    let out = send!(
                        "DescribeInstances",
                        ec2.describe_instances().instance_ids(id)
                    )
                    .await?;
                    Ok(out
                        .reservations()
                        .iter()
                        .flat_map(|r| r.instances())
                        .next()
                        .cloned())
                },
            )
            .await?;
            match found.as_ref().and_then(state) {
                Some(InstanceStateName::Running) => Ok(found),
                Some(InstanceStateName::Terminated)
                | Some(InstanceStateName::ShuttingDown)
                | Some(InstanceStateName::Stopped) => Err(Error::cloud(format!(
                    "instance {id} went to '{}' instead of running",
                    found
                        .as_ref()
                        .and_then(state)
                        .map(|s| s.as_str())
                        .unwrap_or("?")
                ))),
                _ => Ok(None),
            }
        },
    )
    .await
}

/// Terminates the instance and waits until it is gone. Missing is success.
pub async fn terminate(ec2: &Client, id: &str) -> Result<()> {
    match send!(
        "TerminateInstances",
        ec2.terminate_instances().instance_ids(id)
    )
    .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e),
    }
    wait::wait_for(
        format!("instance {id} to terminate"),
        Backoff::resource(),
        || async move {
            Ok(match find(ec2, id).await? {
                None => Some(()),
                Some(i) if state(&i) == Some(&InstanceStateName::Terminated) => Some(()),
                Some(_) => None,
            })
        },
    )
    .await
}
