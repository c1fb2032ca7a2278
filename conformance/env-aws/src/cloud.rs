//! Looking at moto's EC2 through the SDK: seeding what the CPI needs
//! (VPC, subnet, security group, key pair, a light-stemcell AMI) and
//! reading back instances, volumes, images, snapshots and ENIs.

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_ec2::types::{Filter, InstanceAttributeName, InstanceStateName, VolumeAttachmentState};
use aws_sdk_ec2::Client;
use base64::Engine;
use harness::Inventory;
use serde_json::Value;
use std::collections::BTreeMap;

pub const KEY_NAME: &str = "bosh";
pub const SECURITY_GROUP: &str = "bosh";

/// What the environment made in moto before the suite runs.
#[derive(Clone, Debug)]
pub struct Seed {
    pub vpc: String,
    pub subnet: String,
    pub zone: String,
    pub security_group: String,
    pub light_ami: String,
    pub elastic_ip: String,
}

pub struct Inspector {
    rt: tokio::runtime::Runtime,
    ec2: Client,
    ebs: aws_sdk_ebs::Client,
    elb: aws_sdk_elasticloadbalancing::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
}

pub struct VolumeView {
    pub size_gib: u64,
    pub attached_to: Option<String>,
    pub volume_type: String,
}

fn describe_error(op: &str, e: impl std::error::Error) -> String {
    format!("{op}: {}", aws_sdk_ec2::error::DisplayErrorContext(e))
}

impl Inspector {
    pub fn new(endpoint: &str) -> Result<Inspector, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let creds = Credentials::new(
            "AKIAENVAWSINSPECTOR1",
            "inspector-secret",
            None,
            None,
            "env-aws",
        );
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new(crate::REGION))
            .credentials_provider(creds.clone())
            .endpoint_url(endpoint)
            .build();
        let ebs = aws_sdk_ebs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_ebs::config::Region::new(crate::REGION))
            .credentials_provider(creds.clone())
            .endpoint_url(endpoint)
            .build();
        let elb = aws_sdk_elasticloadbalancing::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new(crate::REGION))
            .credentials_provider(creds.clone())
            .endpoint_url(endpoint)
            .build();
        let elbv2 = aws_sdk_elasticloadbalancingv2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_ec2::config::Region::new(crate::REGION))
            .credentials_provider(creds)
            .endpoint_url(endpoint)
            .build();
        Ok(Inspector {
            rt,
            ec2: Client::from_conf(conf),
            ebs: aws_sdk_ebs::Client::from_conf(ebs),
            elb: aws_sdk_elasticloadbalancing::Client::from_conf(elb),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2),
        })
    }

    pub fn client(&self) -> &Client {
        &self.ec2
    }

    pub fn elb_client(&self) -> &aws_sdk_elasticloadbalancing::Client {
        &self.elb
    }

    pub fn elbv2_client(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        &self.elbv2
    }

    /// Runs an SDK future on this inspector's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn seed(&self) -> Result<Seed, String> {
        let ec2 = &self.ec2;
        self.rt.block_on(async {
            let zone = format!("{}a", crate::REGION);
            let vpc = ec2
                .create_vpc()
                .cidr_block("10.0.0.0/16")
                .send()
                .await
                .map_err(|e| describe_error("CreateVpc", e))?;
            let vpc = vpc
                .vpc()
                .and_then(|v| v.vpc_id())
                .unwrap_or_default()
                .to_owned();
            let subnet = ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block("10.0.0.0/24")
                .availability_zone(&zone)
                .send()
                .await
                .map_err(|e| describe_error("CreateSubnet", e))?;
            let subnet = subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_default()
                .to_owned();
            let sg = ec2
                .create_security_group()
                .group_name(SECURITY_GROUP)
                .description("BOSH VMs")
                .vpc_id(&vpc)
                .send()
                .await
                .map_err(|e| describe_error("CreateSecurityGroup", e))?;
            let security_group = sg.group_id().unwrap_or_default().to_owned();
            ec2.create_key_pair()
                .key_name(KEY_NAME)
                .send()
                .await
                .map_err(|e| describe_error("CreateKeyPair", e))?;
            let ami = ec2
                .register_image()
                .name("env-aws-light-stemcell")
                .architecture(aws_sdk_ec2::types::ArchitectureValues::X8664)
                .virtualization_type("hvm")
                .root_device_name("/dev/xvda")
                .send()
                .await
                .map_err(|e| describe_error("RegisterImage", e))?;
            let light_ami = ami.image_id().unwrap_or_default().to_owned();
            let eip = ec2
                .allocate_address()
                .domain(aws_sdk_ec2::types::DomainType::Vpc)
                .send()
                .await
                .map_err(|e| describe_error("AllocateAddress", e))?;
            let elastic_ip = eip.public_ip().unwrap_or_default().to_owned();
            Ok(Seed {
                vpc,
                subnet,
                zone,
                security_group,
                light_ami,
                elastic_ip,
            })
        })
    }

    pub fn inventory(&self) -> Inventory {
        let ec2 = &self.ec2;
        self.rt.block_on(async {
            let mut inv = Inventory::default();
            if let Ok(out) = ec2.describe_instances().send().await {
                for i in out.reservations().iter().flat_map(|r| r.instances()) {
                    let gone = matches!(
                        i.state().and_then(|s| s.name()),
                        Some(InstanceStateName::Terminated) | Some(InstanceStateName::ShuttingDown)
                    );
                    if !gone {
                        inv.vms.extend(i.instance_id().map(str::to_owned));
                    }
                }
            }
            if let Ok(out) = ec2.describe_volumes().send().await {
                for v in out.volumes() {
                    if is_moto_import_volume(v) {
                        continue;
                    }
                    inv.disks.extend(v.volume_id().map(str::to_owned));
                }
            }
            if let Ok(out) = ec2.describe_images().owners("self").send().await {
                inv.stemcells.extend(
                    out.images()
                        .iter()
                        .filter_map(|i| i.image_id().map(str::to_owned)),
                );
            }
            if let Ok(out) = ec2.describe_snapshots().owner_ids("self").send().await {
                inv.snapshots.extend(
                    out.snapshots()
                        .iter()
                        .filter_map(|s| s.snapshot_id().map(str::to_owned)),
                );
            }
            if let Ok(out) = ec2.describe_network_interfaces().send().await {
                inv.other.extend(
                    out.network_interfaces()
                        .iter()
                        .filter_map(|n| n.network_interface_id().map(|id| format!("eni:{id}"))),
                );
            }
            if let Ok(out) = ec2.describe_addresses().send().await {
                inv.other.extend(
                    out.addresses().iter().filter_map(|a| {
                        a.association_id().map(|id| format!("eip-association:{id}"))
                    }),
                );
            }
            // A spot request still open or active is a leak as much as its
            // instance would be.
            if let Ok(out) = ec2.describe_spot_instance_requests().send().await {
                inv.other.extend(
                    out.spot_instance_requests()
                        .iter()
                        .filter(|r| {
                            matches!(r.state().map(|s| s.as_str()), Some("open") | Some("active"))
                        })
                        .filter_map(|r| {
                            r.spot_instance_request_id()
                                .map(|id| format!("spot-request:{id}"))
                        }),
                );
            }
            inv.other.extend(self.registrations(&inv.vms).await);
            for list in [
                &mut inv.vms,
                &mut inv.disks,
                &mut inv.stemcells,
                &mut inv.snapshots,
                &mut inv.other,
            ] {
                list.sort();
            }
            inv
        })
    }

    fn instance(&self, vm: &str) -> Option<aws_sdk_ec2::types::Instance> {
        self.rt.block_on(async {
            let out = self
                .ec2
                .describe_instances()
                .instance_ids(vm)
                .send()
                .await
                .ok()?;
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .next()
                .cloned()
        })
    }

    pub fn vm_exists(&self, vm: &str) -> bool {
        self.instance(vm).is_some_and(|i| {
            !matches!(
                i.state().and_then(|s| s.name()),
                Some(InstanceStateName::Terminated) | Some(InstanceStateName::ShuttingDown)
            )
        })
    }

    pub fn vm_ip(&self, vm: &str) -> Option<String> {
        self.instance(vm)?.private_ip_address().map(str::to_owned)
    }

    /// The instance's type, zone, key name, security group ids and public IP.
    pub fn instance_facts(&self, vm: &str) -> Option<BTreeMap<String, String>> {
        let i = self.instance(vm)?;
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v.to_owned());
            }
        };
        put("instance_type", i.instance_type().map(|t| t.as_str()));
        put(
            "availability_zone",
            i.placement().and_then(|p| p.availability_zone()),
        );
        put("key_name", i.key_name());
        put("subnet_id", i.subnet_id());
        put("public_ip", i.public_ip_address());
        put("image_id", i.image_id());
        // In a VPC the groups are the network interfaces'.
        let mut groups: Vec<String> = self.rt.block_on(async {
            let out = self
                .ec2
                .describe_network_interfaces()
                .filters(
                    Filter::builder()
                        .name("attachment.instance-id")
                        .values(vm)
                        .build(),
                )
                .send()
                .await;
            out.map(|o| {
                o.network_interfaces()
                    .iter()
                    .flat_map(|n| n.groups())
                    .filter_map(|g| g.group_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
        });
        if groups.is_empty() {
            groups = i
                .security_groups()
                .iter()
                .filter_map(|g| g.group_id().map(str::to_owned))
                .collect();
        }
        m.insert("security_groups".into(), groups.join(","));
        Some(m)
    }

    /// Tags on any resource (instance, volume, snapshot, image).
    pub fn tags(&self, id: &str) -> BTreeMap<String, String> {
        self.rt.block_on(async {
            let out = self
                .ec2
                .describe_tags()
                .filters(Filter::builder().name("resource-id").values(id).build())
                .send()
                .await;
            out.map(|o| {
                o.tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or("").to_owned())))
                    .collect()
            })
            .unwrap_or_default()
        })
    }

    /// The user data the instance boots with, parsed as JSON.
    pub fn user_data(&self, vm: &str) -> Option<Value> {
        self.rt.block_on(async {
            let out = self
                .ec2
                .describe_instance_attribute()
                .instance_id(vm)
                .attribute(InstanceAttributeName::UserData)
                .send()
                .await
                .ok()?;
            let b64 = out.user_data()?.value()?;
            let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
            serde_json::from_slice(&raw).ok()
        })
    }

    pub fn terminate(&self, vm: &str) {
        self.rt.block_on(async {
            let _ = self.ec2.terminate_instances().instance_ids(vm).send().await;
        })
    }

    pub fn volume(&self, id: &str) -> Option<VolumeView> {
        self.rt.block_on(async {
            let out = self
                .ec2
                .describe_volumes()
                .volume_ids(id)
                .send()
                .await
                .ok()?;
            let v = out.volumes().first()?;
            Some(VolumeView {
                size_gib: v.size().unwrap_or(0).max(0) as u64,
                attached_to: v
                    .attachments()
                    .iter()
                    .find(|a| a.state() == Some(&VolumeAttachmentState::Attached))
                    .and_then(|a| a.instance_id().map(str::to_owned)),
                volume_type: v
                    .volume_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
            })
        })
    }
}

/// moto's StartSnapshot makes a backing volume that real EBS direct
/// snapshots do not have (their VolumeId is vol-ffffffff), and nothing can
/// remove it: an untagged, unattached gp2 volume. The CPI never makes gp2
/// volumes in the suite, so these are moto's, not leaks.
fn is_moto_import_volume(v: &aws_sdk_ec2::types::Volume) -> bool {
    v.volume_type().map(|t| t.as_str()) == Some("gp2")
        && v.attachments().is_empty()
        && v.tags().is_empty()
}

impl Inspector {
    /// Block indexes the EBS direct snapshot holds, in order.
    pub fn snapshot_blocks(&self, snapshot: &str) -> Vec<i64> {
        self.rt.block_on(async {
            let out = self
                .ebs
                .list_snapshot_blocks()
                .snapshot_id(snapshot)
                .send()
                .await;
            let mut v: Vec<i64> = out
                .map(|o| {
                    o.blocks()
                        .iter()
                        .filter_map(|b| b.block_index().map(i64::from))
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        })
    }
}

impl Inspector {
    /// The root device name EC2 reports for an image.
    pub fn image_root_device(&self, ami: &str) -> Option<String> {
        self.rt.block_on(async {
            let out = self
                .ec2
                .describe_images()
                .image_ids(ami)
                .send()
                .await
                .ok()?;
            out.images().first()?.root_device_name().map(str::to_owned)
        })
    }
}
