//! VMs: create (ENI, RunInstances, wait, attach extras, join load
//! balancers; undo on failure), delete, has, reboot, metadata, and
//! instance sizing.

use crate::cloud::{tags, Aws};
use crate::errors::{aws_cause, is_not_found};
use crate::props::{tag_pairs, VmProps};
use crate::{instance, network, stemcell};
use agent::{Delivery, RegistryClient};
use cpi::{
    CloudProperties, CreateVm, CreatedVm, Error, ErrorKind, Metadata, Result, VmCid, VmResources,
};
use serde_json::json;

impl cpi::Vms for Aws {
    async fn create_vm(&self, args: CreateVm) -> Result<CreatedVm> {
        let props: VmProps = cpi::typed("create_vm: cloud_properties", &args.cloud_properties)?;
        let instance_type = props
            .instance_type
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::cpi("create_vm: cloud_properties.instance_type: missing"))?;
        let plan = network::plan(&args.networks)?;
        let ec2 = self.ec2().await?;
        let fail = |e: Error| creation_failed(e);

        let image = stemcell::image_for(ec2, &args.stemcell_cid)
            .await
            .map_err(fail)?;
        // Refused before anything is made.
        props.raw_storage(&instance_type, &image)?;
        let subnet = network::subnet(ec2, &plan.name, &plan.subnet)
            .await
            .map_err(fail)?;
        if let Some(az) = props
            .availability_zone
            .as_deref()
            .filter(|az| *az != subnet.availability_zone)
        {
            return Err(Error::cpi(format!(
                "create_vm: cloud_properties.availability_zone '{az}' differs from subnet {}'s zone '{}'",
                plan.subnet, subnet.availability_zone
            )));
        }
        let groups = plan
            .security_groups
            .clone()
            .or_else(|| props.security_groups.clone())
            .unwrap_or_else(|| self.config.aws().default_security_groups.clone());
        let group_ids = network::security_group_ids(ec2, &subnet.vpc_id, &groups)
            .await
            .map_err(fail)?;
        let load_balancers = self
            .plan_load_balancers(&props.elbs, &props.lb_target_groups)
            .await
            .map_err(fail)?;

        let token = uuid::Uuid::new_v4().to_string();
        let ip = (plan.network.kind == cpi::NetworkType::Manual)
            .then(|| plan.network.ip.clone())
            .flatten();
        let eni = network::create_eni(ec2, &plan.subnet, ip.as_deref(), &group_ids, &token)
            .await
            .map_err(|e| {
                fail(e.context(format!(
                    "creating the network interface in subnet {}",
                    plan.subnet
                )))
            })?;

        // From here on, whatever fails removes what was made.
        let made = Made {
            eni: eni.id.clone(),
            instance: None,
            token: token.clone(),
        };
        match self
            .launch(
                &args,
                &props,
                &plan,
                &image,
                &subnet.availability_zone,
                &eni,
                &instance_type,
                &token,
            )
            .await
        {
            Ok(vm) => match self
                .join_load_balancers(&load_balancers, vm.cid.as_str())
                .await
            {
                Ok(()) => Ok(vm),
                Err(e) => {
                    let made = Made {
                        instance: Some(vm.cid.to_string()),
                        ..made
                    };
                    made.undo(ec2).await;
                    if let Ok(Some(registry)) = self.registry_client() {
                        let _ = registry.delete(&vm.cid).await;
                    }
                    Err(fail(e))
                }
            },
            Err((e, instance)) => {
                let made = Made { instance, ..made };
                made.undo(ec2).await;
                Err(fail(e))
            }
        }
    }

    async fn delete_vm(&self, cid: VmCid) -> Result<()> {
        let ec2 = self.ec2().await?;
        remove_instance(ec2, cid.as_str())
            .await
            .context_of("delete_vm", &cid)?;
        if let Some(registry) = self.registry_client()? {
            if let Err(e) = registry.delete(&cid).await {
                tracing::warn!(
                    "delete_vm: removing {cid}'s settings from the registry: {}",
                    e.message()
                );
            }
        }
        Ok(())
    }

    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        let ec2 = self.ec2().await?;
        Ok(instance::find(ec2, cid.as_str())
            .await?
            .is_some_and(|i| !instance::is_gone(&i)))
    }

    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        let ec2 = self.ec2().await?;
        match send!(
            "RebootInstances",
            ec2.reboot_instances().instance_ids(cid.as_str())
        )
        .await
        {
            Err(e) if is_not_found(&e) => Err(Error::vm_not_found(&cid)),
            other => other.map(|_| ()),
        }
    }

    async fn set_vm_metadata(&self, cid: VmCid, metadata: Metadata) -> Result<()> {
        let ec2 = self.ec2().await?;
        let i = instance::get(ec2, &cid).await?;
        let pairs = tag_pairs(&metadata);
        if pairs.is_empty() {
            return Ok(());
        }
        // The VM's volumes get the same tags, as the Ruby CPI does, so that
        // they can be told apart in the console.
        let mut resources = vec![cid.to_string()];
        resources.extend(
            i.block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|e| e.volume_id()).map(str::to_owned)),
        );
        send!(
            "CreateTags",
            ec2.create_tags()
                .set_resources(Some(resources))
                .set_tags(Some(tags(&pairs)))
        )
        .await
        .context_of("set_vm_metadata", &cid)?;
        Ok(())
    }

    async fn calculate_vm_cloud_properties(&self, r: VmResources) -> Result<CloudProperties> {
        let t = crate::instance_types::cheapest(r.cpu, r.ram).ok_or_else(|| {
            Error::cloud(format!(
                "no instance type has {} CPUs and {} MiB of memory",
                r.cpu, r.ram
            ))
        })?;
        let v = json!({"instance_type": t, "ephemeral_disk": {"size": r.ephemeral_disk_size}});
        Ok(v.as_object().cloned().unwrap_or_default())
    }
}

/// Terminates an instance and removes what EC2 would remove with it: its
/// elastic IP association and the primary ENI that create_vm made (EC2 does
/// both on termination; a look-alike such as moto may not, and a VM made
/// before DeleteOnTermination was set keeps its ENI). Missing is success.
async fn remove_instance(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<()> {
    let primary_eni = instance::find(ec2, id).await?.and_then(|i| {
        i.network_interfaces()
            .iter()
            .find(|n| n.attachment().and_then(|a| a.device_index()) == Some(0))
            .and_then(|n| n.network_interface_id().map(str::to_owned))
    });
    network::disassociate_addresses(ec2, id).await?;
    instance::terminate(ec2, id).await?;
    if let Some(eni) = primary_eni {
        network::delete_eni(ec2, &eni).await?;
    }
    Ok(())
}

/// What `create_vm` made so far, to remove when a later step fails.
struct Made {
    eni: String,
    instance: Option<String>,
    /// The call's token: an instance whose RunInstances answer was lost is
    /// found by it.
    token: String,
}

impl Made {
    /// Removes what was made, each step on its own retry budget, none of
    /// them depending on a look-up of the instance succeeding: the ids are
    /// known, and TerminateInstances and DeleteNetworkInterface by id are
    /// idempotent.
    async fn undo(&self, ec2: &aws_sdk_ec2::Client) {
        let instance = match &self.instance {
            Some(id) => Some(id.clone()),
            None => instance::find_by_token(ec2, &self.token)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(
                        "create_vm cleanup: looking for an instance of this call: {}",
                        e.message()
                    );
                    None
                }),
        };
        if let Some(id) = &instance {
            // A spot instance's request must not stay open after it.
            if let Err(e) = crate::spot::cancel_request_of(ec2, id).await {
                tracing::error!(
                    "create_vm cleanup: cancelling the spot request of {id}: {}",
                    e.message()
                );
            }
            if let Err(e) = network::disassociate_addresses(ec2, id).await {
                tracing::error!(
                    "create_vm cleanup: taking elastic IPs off {id}: {}",
                    e.message()
                );
            }
            if let Err(e) = instance::terminate(ec2, id).await {
                tracing::error!("create_vm cleanup: terminating {id}: {}", e.message());
            }
        }
        // Still attached while the instance terminates: retried until free.
        if let Err(e) = network::delete_eni(ec2, &self.eni).await {
            tracing::error!(
                "create_vm cleanup: deleting network interface {}: {}",
                self.eni,
                e.message()
            );
        }
    }
}

/// Any failure of `create_vm` answers `VMCreationFailed`, except bad input;
/// a retry can help where capacity ran out or an IP is still in use.
fn creation_failed(e: Error) -> Error {
    if e.is(ErrorKind::Cpi) || e.is(ErrorKind::VmCreationFailed) {
        return e;
    }
    let retry = aws_cause(&e).is_some_and(|a| a.is_transient()) || e.ok_to_retry();
    e.with_kind(ErrorKind::VmCreationFailed)
        .retry(retry)
        .context("create_vm")
}

trait ContextOf<T> {
    fn context_of(self, method: &str, id: &dyn std::fmt::Display) -> Result<T>;
}
impl<T> ContextOf<T> for Result<T> {
    fn context_of(self, method: &str, id: &dyn std::fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(format!("{method} {id}")))
    }
}

impl Aws {
    pub(crate) fn registry_client(&self) -> Result<Option<RegistryClient>> {
        match &self.config.cloud.properties.registry {
            Some(r) if r.endpoint.is_some() || r.host.is_some() => {
                Ok(Some(RegistryClient::new(r, "cloud.properties.registry")?))
            }
            _ => Ok(None),
        }
    }

    /// Settings go in user data for stemcell API v2+; else to the registry
    /// when one is configured (user data only points at it).
    pub(crate) fn delivery(&self) -> Delivery {
        match Delivery::choose(&self.ctx) {
            Delivery::Registry if self.registry_client().ok().flatten().is_none() => {
                tracing::warn!(
                    "stemcell API v1 but no registry configured: settings go in user data"
                );
                Delivery::UserData
            }
            d => d,
        }
    }
}
