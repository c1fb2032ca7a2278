//! The RunInstances step of `create_vm`: agent settings into user data,
//! block device mappings, placement and the rest of the cloud_properties,
//! then waiting for the instance and finishing its network setup.

use crate::cloud::{tag_spec, Aws};
use crate::create;
use crate::errors::code_of;
use crate::props::{gib, tag_pairs, VmProps};
use crate::{instance, network, stemcell};
use agent::{Delivery, Settings};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, IamInstanceProfileSpecification,
    InstanceMetadataOptionsRequest, InstanceNetworkInterfaceSpecification, InstanceType,
    NetworkInterfaceAttachmentChanges, Placement, ResourceType, Tenancy, VolumeType,
};
use base64::Engine;
use cpi::{CreateVm, CreatedVm, Error, VmCid};
use serde_json::Value;

/// Where the agent finds its ephemeral disk when it is an EBS volume.
const EPHEMERAL_DEVICE: &str = "/dev/sdb";
/// The Ruby CPI's default ephemeral disk: 10 GiB.
const DEFAULT_EPHEMERAL_MIB: u64 = 10 * 1024;

impl Aws {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn launch(
        &self,
        args: &CreateVm,
        props: &VmProps,
        plan: &network::NetPlan,
        image: &stemcell::ImageInfo,
        az: &str,
        eni: &network::Eni,
        instance_type: &str,
        token: &str,
    ) -> std::result::Result<CreatedVm, (Error, Option<String>)> {
        let ec2 = self.ec2().await.map_err(|e| (e, None))?;
        if props.source_dest_check == Some(false) {
            network::disable_source_dest_check(ec2, &eni.id)
                .await
                .map_err(|e| (e, None))?;
        }

        let vm_name = format!("vm-{}", uuid::Uuid::new_v4());
        let mut networks = args.networks.clone();
        if let Some(n) = networks.get_mut(&plan.name) {
            n.mac = eni.mac.clone();
            n.extra.insert("use_dhcp".into(), Value::Bool(true));
        }
        let eph = props.ephemeral_disk.as_ref();
        let ephemeral = match eph {
            Some(e) if e.use_root_disk => None,
            _ => Some(Value::String(EPHEMERAL_DEVICE.into())),
        };
        let raw = props
            .raw_storage(instance_type, image)
            .map_err(|e| (e, None))?;
        let agent_args = CreateVm {
            networks,
            ..args.clone()
        };
        let settings = Settings::new(
            &self.config.cloud.properties.agent,
            &agent_args,
            &vm_name,
            agent::Disks {
                system: image.root_device_name.clone(),
                ephemeral,
                raw_ephemeral: raw.agent,
                ..Default::default()
            },
        );
        let delivery = self.delivery();
        let user_data = agent::user_data(
            &settings,
            delivery,
            self.config.cloud.properties.registry.as_ref(),
        );
        let user_data = base64::engine::general_purpose::STANDARD.encode(user_data.to_string());

        let mut req = ec2
            .run_instances()
            .image_id(&image.id)
            .instance_type(InstanceType::from(instance_type))
            .min_count(1)
            .max_count(1)
            .user_data(user_data)
            .network_interfaces(
                InstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .network_interface_id(&eni.id)
                    .build(),
            )
            .set_block_device_mappings(Some(
                [self.block_devices(props, image), raw.mappings].concat(),
            ))
            .placement(
                Placement::builder()
                    .availability_zone(az)
                    .set_group_name(props.placement_group.clone())
                    .set_tenancy(props.tenancy.as_deref().map(Tenancy::from))
                    .build(),
            );
        if let Some(key) = props
            .key_name
            .clone()
            .or_else(|| self.config.aws().default_key_name.clone())
        {
            req = req.key_name(key);
        }
        if let Some(p) = props
            .iam_instance_profile
            .clone()
            .or_else(|| self.config.aws().default_iam_instance_profile.clone())
        {
            let spec = IamInstanceProfileSpecification::builder();
            let spec = if p.starts_with("arn:") {
                spec.arn(p)
            } else {
                spec.name(p)
            };
            req = req.iam_instance_profile(spec.build());
        }
        if let Some(m) = props.metadata_options.as_ref().or(self
            .config
            .aws()
            .metadata_options
            .as_ref())
        {
            req = req.metadata_options(metadata_options(m));
        }
        let tag_list = tag_pairs(&props.tags);
        req = req.tag_specifications(create::tagged(ResourceType::Instance, &tag_list, token));
        if let Some(spec) = tag_spec(ResourceType::Volume, &tag_list) {
            req = req.tag_specifications(spec);
        }
        let id = crate::spot::run(ec2, req, props.spot().as_ref(), token)
            .await
            .map_err(|e| {
                let e = match code_of(&e) {
                    Some(c) if c.starts_with("InvalidInstanceType") || c == "Unsupported" => {
                        e.context(format!("cloud_properties.instance_type '{instance_type}'"))
                    }
                    Some(c) if c.starts_with("InvalidKeyPair") => {
                        e.context("cloud_properties.key_name")
                    }
                    Some(c) if c.starts_with("InvalidAMIID") => {
                        e.context(format!("stemcell {}", image.id))
                    }
                    _ => e,
                };
                (e, None)
            })?;
        tracing::info!("create_vm: launched {id} from {} in {az}", image.id);
        let made = Some(id.clone());
        let fail = |e: Error| (e, made.clone());

        let running = instance::wait_running(ec2, &id).await.map_err(fail)?;
        // The ENI was made apart from the instance: it must go when the
        // instance goes.
        let attachment = running
            .network_interfaces()
            .iter()
            .find(|n| n.network_interface_id() == Some(eni.id.as_str()))
            .and_then(|n| n.attachment())
            .and_then(|a| a.attachment_id())
            .map(str::to_owned);
        if let Some(attachment) = attachment {
            send!(
                "ModifyNetworkInterfaceAttribute",
                ec2.modify_network_interface_attribute()
                    .network_interface_id(&eni.id)
                    .attachment(
                        NetworkInterfaceAttachmentChanges::builder()
                            .attachment_id(attachment)
                            .delete_on_termination(true)
                            .build(),
                    )
            )
            .await
            .map_err(fail)?;
        }
        network::advertise_routes(ec2, &id, &props.advertised_routes)
            .await
            .map_err(fail)?;
        if let Some(vip) = &plan.vip {
            network::associate_vip(ec2, &id, vip).await.map_err(fail)?;
        }
        let cid = VmCid::new(id);
        if delivery == Delivery::Registry {
            if let Some(registry) = self.registry_client().map_err(fail)? {
                registry.put(&cid, &settings).await.map_err(fail)?;
            }
        }
        Ok(CreatedVm {
            cid,
            networks: args.networks.clone(),
        })
    }

    /// Root (gp3, sized when asked) and ephemeral (`/dev/sdb`: EBS, or the
    /// first instance store) mappings.
    fn block_devices(
        &self,
        props: &VmProps,
        image: &stemcell::ImageInfo,
    ) -> Vec<BlockDeviceMapping> {
        let mut out = Vec::new();
        let root = props.root_disk.as_ref();
        let root_size = root.and_then(|r| r.size);
        // EC2 keeps the image's size and snapshot when the mapping names
        // neither; moto insists on one of them, so name the image's snapshot.
        if root_size.is_some() || image.root_snapshot_id.is_some() {
            let ebs = EbsBlockDevice::builder()
                .volume_type(VolumeType::from(
                    root.and_then(|r| r.kind.as_deref()).unwrap_or("gp3"),
                ))
                .set_volume_size(root_size.map(gib))
                .set_snapshot_id(if root_size.is_none() {
                    image.root_snapshot_id.clone()
                } else {
                    None
                })
                .set_iops(root.and_then(|r| r.iops))
                .set_throughput(root.and_then(|r| r.throughput))
                .delete_on_termination(true)
                .build();
            out.push(
                BlockDeviceMapping::builder()
                    .device_name(&image.root_device_name)
                    .ebs(ebs)
                    .build(),
            );
        }
        match props.ephemeral_disk.as_ref() {
            Some(e) if e.use_root_disk => {}
            Some(e) if e.use_instance_storage => out.push(
                BlockDeviceMapping::builder()
                    .device_name(EPHEMERAL_DEVICE)
                    .virtual_name("ephemeral0")
                    .build(),
            ),
            e => {
                let ebs = EbsBlockDevice::builder()
                    .volume_size(gib(e.and_then(|e| e.size).unwrap_or(DEFAULT_EPHEMERAL_MIB)))
                    .volume_type(VolumeType::from(
                        e.and_then(|e| e.kind.as_deref()).unwrap_or("gp3"),
                    ))
                    .set_iops(e.and_then(|e| e.iops))
                    .set_throughput(e.and_then(|e| e.throughput))
                    .set_encrypted(
                        e.and_then(|e| e.encrypted)
                            .or(Some(self.config.aws().encrypted)),
                    )
                    .set_kms_key_id(e.and_then(|e| e.kms_key_arn.clone()))
                    .delete_on_termination(true)
                    .build();
                out.push(
                    BlockDeviceMapping::builder()
                        .device_name(EPHEMERAL_DEVICE)
                        .ebs(ebs)
                        .build(),
                );
            }
        }
        out
    }
}

/// `metadata_options` as the Ruby CPI takes them (`http_tokens`, …).
fn metadata_options(v: &Value) -> InstanceMetadataOptionsRequest {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    InstanceMetadataOptionsRequest::builder()
        .set_http_tokens(s("http_tokens").as_deref().map(HttpTokensState::from))
        .set_http_put_response_hop_limit(
            v.get("http_put_response_hop_limit")
                .and_then(Value::as_i64)
                .map(|n| n as i32),
        )
        .set_http_endpoint(s("http_endpoint").as_deref().map(Into::into))
        .build()
}
