//! Classic ELBs and ELBv2 target groups in moto: made for tests, and their
//! registrations read back (DescribeInstanceHealth, DescribeTargetHealth).
//!
//! AWS drops a terminated instance from both; moto's ELBv2 does too, its
//! classic ELB keeps it. The inventory lists registrations as AWS would
//! (those of instances still there), so that a VM left registered shows,
//! and a terminated one does not.

use crate::cloud::Inspector;
use aws_sdk_elasticloadbalancing::types::Listener;
use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetTypeEnum};

fn describe_error(op: &str, e: impl std::error::Error) -> String {
    format!("{op}: {}", aws_sdk_ec2::error::DisplayErrorContext(e))
}

impl Inspector {
    /// A classic ELB listening on HTTP 80 in the seeded subnet.
    pub fn create_classic_elb(&self, name: &str, subnet: &str) -> Result<(), String> {
        self.block_on(async {
            self.elb_client()
                .create_load_balancer()
                .load_balancer_name(name)
                .subnets(subnet)
                .listeners(
                    Listener::builder()
                        .protocol("HTTP")
                        .load_balancer_port(80)
                        .instance_port(8080)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .send()
                .await
                .map_err(|e| describe_error("CreateLoadBalancer", e))?;
            Ok(())
        })
    }

    /// An instance-type HTTP target group in `vpc`; answers its ARN.
    pub fn create_target_group(&self, name: &str, vpc: &str) -> Result<String, String> {
        self.block_on(async {
            let out = self
                .elbv2_client()
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Http)
                .port(8080)
                .vpc_id(vpc)
                .target_type(TargetTypeEnum::Instance)
                .send()
                .await
                .map_err(|e| describe_error("CreateTargetGroup", e))?;
            out.target_groups()
                .first()
                .and_then(|g| g.target_group_arn())
                .map(str::to_owned)
                .ok_or_else(|| "CreateTargetGroup: no ARN".to_owned())
        })
    }

    /// The instances registered with classic ELB `name`, as moto keeps them
    /// (terminated ones included), each once.
    pub fn elb_instances(&self, name: &str) -> Vec<String> {
        self.block_on(self.elb_registered(name))
    }

    /// The targets registered with target group `name` (DescribeTargetHealth
    /// without targets lists the registered ones).
    pub fn target_group_targets(&self, name: &str) -> Vec<String> {
        self.block_on(self.tg_registered(name))
    }

    async fn elb_registered(&self, name: &str) -> Vec<String> {
        let Ok(out) = self
            .elb_client()
            .describe_instance_health()
            .load_balancer_name(name)
            .send()
            .await
        else {
            return vec![];
        };
        let mut ids: Vec<String> = out
            .instance_states()
            .iter()
            .filter_map(|s| s.instance_id().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    async fn tg_registered(&self, name: &str) -> Vec<String> {
        let elbv2 = self.elbv2_client();
        let Ok(groups) = elbv2.describe_target_groups().names(name).send().await else {
            return vec![];
        };
        let Some(arn) = groups
            .target_groups()
            .first()
            .and_then(|g| g.target_group_arn())
        else {
            return vec![];
        };
        let Ok(out) = elbv2
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
        else {
            return vec![];
        };
        out.target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_owned))
            .collect()
    }

    /// Every registration of a live instance (`live`: the inventory's
    /// VMs), as `elb:<name>/<id>` and `target-group:<name>/<id>`.
    pub(crate) async fn registrations(&self, live: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(lbs) = self.elb_client().describe_load_balancers().send().await {
            for name in lbs
                .load_balancer_descriptions()
                .iter()
                .filter_map(|d| d.load_balancer_name())
            {
                for id in self.elb_registered(name).await {
                    if live.contains(&id) {
                        out.push(format!("elb:{name}/{id}"));
                    }
                }
            }
        }
        if let Ok(groups) = self.elbv2_client().describe_target_groups().send().await {
            for name in groups
                .target_groups()
                .iter()
                .filter_map(|g| g.target_group_name())
            {
                for id in self.tg_registered(name).await {
                    out.push(format!("target-group:{name}/{id}"));
                }
            }
        }
        out
    }
}
