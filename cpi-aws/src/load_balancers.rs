//! `elbs` and `lb_target_groups`: the load balancers a new VM joins, as the
//! Ruby CPI does it (`classic_lb.rb`, `lb_target_group.rb`): every target
//! group, then every classic ELB, once the instance runs.
//!
//! The names are looked up before anything is made, so that a typo fails
//! the create naming the key and the name and nothing is launched; the
//! registrations come after launch, and a failure there undoes the create
//! (the instance is terminated). Both register calls are idempotent on AWS,
//! so they go through `send!`'s retries, lost answers included.
//!
//! A create that fails once a registration was made deregisters the VM
//! from each (best effort: a failure is logged, and the termination that
//! follows takes the VM out of every load balancer on AWS anyway).
//! `delete_vm` only terminates, as the incumbent does: ELB and ELBv2 drop
//! terminated instances themselves, and delete_vm has no cloud_properties
//! to say which load balancers to leave.

use crate::cloud::Aws;
use crate::errors::code_of;
use aws_sdk_elasticloadbalancing::types::Instance;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use cpi::{Error, Result};

/// What a VM is to be registered with, its names checked.
#[derive(Debug, Default)]
pub struct Plan {
    elbs: Vec<String>,
    /// (name, ARN)
    target_groups: Vec<(String, String)>,
}

impl Aws {
    /// Checks that every named ELB and target group exists, and finds the
    /// target groups' ARNs. No client is made when both lists are empty.
    pub(crate) async fn plan_load_balancers(
        &self,
        elbs: &[String],
        target_groups: &[String],
    ) -> Result<Plan> {
        let mut plan = Plan::default();
        if !target_groups.is_empty() {
            let elbv2 = self.elbv2().await?;
            for name in target_groups {
                let arn = match send!(
                    "DescribeTargetGroups",
                    elbv2.describe_target_groups().names(name)
                )
                .await
                {
                    Ok(out) => out
                        .target_groups()
                        .iter()
                        .find(|g| g.target_group_name() == Some(name.as_str()))
                        .and_then(|g| g.target_group_arn())
                        .map(str::to_owned),
                    Err(e) if code_of(&e) == Some("TargetGroupNotFound") => None,
                    Err(e) => {
                        return Err(e.context(format!("cloud_properties.lb_target_groups '{name}'")))
                    }
                };
                let arn = arn.ok_or_else(|| {
                    Error::cloud(format!(
                        "cloud_properties.lb_target_groups: '{name}': no such target group in {}",
                        self.region()
                    ))
                })?;
                plan.target_groups.push((name.clone(), arn));
            }
        }
        if !elbs.is_empty() {
            let elb = self.elb().await?;
            for name in elbs {
                let found = match send!(
                    "DescribeLoadBalancers",
                    elb.describe_load_balancers().load_balancer_names(name)
                )
                .await
                {
                    Ok(out) => out
                        .load_balancer_descriptions()
                        .iter()
                        .any(|d| d.load_balancer_name() == Some(name.as_str())),
                    Err(e) if code_of(&e) == Some("LoadBalancerNotFound") => false,
                    Err(e) => return Err(e.context(format!("cloud_properties.elbs '{name}'"))),
                };
                if !found {
                    return Err(Error::cloud(format!(
                        "cloud_properties.elbs: '{name}': no such classic load balancer in {}",
                        self.region()
                    )));
                }
                plan.elbs.push(name.clone());
            }
        }
        Ok(plan)
    }

    /// Registers the running instance `id` with every target group, then
    /// every ELB of the plan; on a failure, deregisters it from those it
    /// joined (and the one that failed, whose answer may have been lost).
    pub(crate) async fn join_load_balancers(&self, plan: &Plan, id: &str) -> Result<()> {
        let mut joined = Vec::new();
        let r = self.register_each(plan, id, &mut joined).await;
        if r.is_err() {
            for lb in &joined {
                if let Err(e) = self.deregister_one(lb, id).await {
                    tracing::warn!("create_vm cleanup: {}", e.message());
                }
            }
        }
        r
    }

    async fn register_each<'a>(
        &self,
        plan: &'a Plan,
        id: &str,
        joined: &mut Vec<Joined<'a>>,
    ) -> Result<()> {
        if !plan.target_groups.is_empty() {
            let elbv2 = self.elbv2().await?;
            for (name, arn) in &plan.target_groups {
                joined.push(Joined::TargetGroup(name, arn));
                send!(
                    "RegisterTargets",
                    elbv2
                        .register_targets()
                        .target_group_arn(arn)
                        .targets(TargetDescription::builder().id(id).build())
                )
                .await
                .map_err(|e| {
                    e.context(format!(
                        "registering {id} with cloud_properties.lb_target_groups '{name}'"
                    ))
                })?;
                tracing::info!("create_vm: registered {id} with target group {name}");
            }
        }
        if !plan.elbs.is_empty() {
            let elb = self.elb().await?;
            for name in &plan.elbs {
                joined.push(Joined::Elb(name));
                send!(
                    "RegisterInstancesWithLoadBalancer",
                    elb.register_instances_with_load_balancer()
                        .load_balancer_name(name)
                        .instances(Instance::builder().instance_id(id).build())
                )
                .await
                .map_err(|e| {
                    e.context(format!(
                        "registering {id} with cloud_properties.elbs '{name}'"
                    ))
                })?;
                tracing::info!("create_vm: registered {id} with classic ELB {name}");
            }
        }
        Ok(())
    }

    async fn deregister_one(&self, lb: &Joined<'_>, id: &str) -> Result<()> {
        match lb {
            Joined::TargetGroup(name, arn) => {
                let elbv2 = self.elbv2().await?;
                send!(
                    "DeregisterTargets",
                    elbv2
                        .deregister_targets()
                        .target_group_arn(*arn)
                        .targets(TargetDescription::builder().id(id).build())
                )
                .await
                .map_err(|e| e.context(format!("deregistering {id} from target group {name}")))?;
            }
            Joined::Elb(name) => {
                let elb = self.elb().await?;
                send!(
                    "DeregisterInstancesFromLoadBalancer",
                    elb.deregister_instances_from_load_balancer()
                        .load_balancer_name(*name)
                        .instances(Instance::builder().instance_id(id).build())
                )
                .await
                .map_err(|e| e.context(format!("deregistering {id} from ELB {name}")))?;
            }
        }
        Ok(())
    }
}

/// A registration made (or tried) by this call.
enum Joined<'a> {
    /// (name, ARN)
    TargetGroup(&'a str, &'a str),
    Elb(&'a str),
}
