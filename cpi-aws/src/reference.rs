//! The reference of everything cpi-aws reads: the `cpi.json` keys, the
//! incumbent job's properties and where each goes, and the
//! `cloud_properties` keys, each with its status beside the incumbent
//! (cloudfoundry/bosh-aws-cpi-release). README.md's tables are rendered
//! from these (`markdown()`), and tests check them against the config
//! types, the cloud_properties types and the incumbent's job spec.

use cpi::reference::{key, Reference};
pub use cpi::reference::{JobProperty, Key};

/// `cpi.json`, as the `aws_cpi` job renders it: `cloud.plugin` and the keys
/// under `cloud.properties`.
pub const CONFIG: &[Key] = &[
    key("plugin", "string", "aws", "`cloud.plugin`; anything but `aws` is refused.", "implemented"),
    key("aws.credentials_source", "`static` or `env_or_profile`", "static", "`static`: the keys below, no profile files read, no IMDS probe; `env_or_profile`: the SDK's default chain (environment, profile, web identity, ECS, instance profile over IMDSv2).", "implemented (tests/config.rs)"),
    key("aws.access_key_id", "string", "none", "Required with `static`; refused with `env_or_profile`.", "implemented"),
    key("aws.secret_access_key", "string (secret)", "none", "Required with `static`; never logged.", "implemented"),
    key("aws.session_token", "string (secret)", "none", "STS session token with `static`.", "implemented"),
    key("aws.role_arn", "string", "none", "A role assumed (STS AssumeRole, session `bosh-aws-cpi`) over the credentials above.", "implemented"),
    key("aws.default_iam_instance_profile", "string", "none", "Instance profile (name, or ARN) for VMs whose cloud_properties name none.", "implemented"),
    key("aws.default_key_name", "string", "none", "Key pair for VMs whose cloud_properties name none.", "implemented (tests/vms.rs)"),
    key("aws.default_security_groups", "list of names or ids", "[]", "Security groups for VMs when neither the network nor the VM names any.", "implemented (tests/create_vm_options.rs)"),
    key("aws.max_retries", "integer", "8", "Attempts after the first for server errors and dropped connections, per request; throttling (`RequestLimitExceeded`) is waited out to a 100 s deadline instead, then answered retriable. The SDK's own retries are off: one layer, nothing multiplies.", "implemented (tests/faults.rs, `conformance load --chaos throttle`)"),
    key("aws.encrypted", "bool", "false", "Default encryption of ephemeral and persistent volumes and imported stemcells.", "implemented (tests/disks.rs)"),
    key("aws.kms_key_arn", "string", "none", "Default KMS key for encrypted volumes and stemcells.", "implemented"),
    key("aws.metadata_options", "object", "none", "Instance metadata options (`http_tokens`, `http_put_response_hop_limit`, `http_endpoint`) for every VM.", "implemented (tests/create_vm_options.rs)"),
    key("aws.dualstack", "bool", "false", "Dual-stack (IPv6) API endpoints.", "implemented (SDK `use_dual_stack`)"),
    key("aws.enable_describe_instance_types", "bool", "true", "DescribeInstanceTypes for NVMe detection; false: the built-in family list.", "implemented (tests/disks.rs)"),
    key("aws.region", "string", "required unless ec2_endpoint", "The region signed for and used for light stemcells' AMIs.", "implemented; a malformed name refused by key"),
    key("aws.ec2_endpoint", "URL or host", "from the region", "EC2 endpoint; `https://` added when there is no scheme.", "implemented"),
    key("aws.ebs_endpoint", "URL or host", "from the region", "EBS direct API endpoint (heavy stemcell import).", "extension (the incumbent imports through a VM)"),
    key("aws.elb_endpoint", "URL or host", "from the region", "Endpoint of both load balancer APIs (classic ELB and ELBv2), as in the incumbent; `https://` added when there is no scheme. Used only by VMs with `elbs` or `lb_target_groups`.", "implemented (tests/load_balancers.rs)"),
    key("aws.fast_path_delete", "any", "none", "Read for configs of older releases; no effect.", "read, ignored"),
    key("agent.mbus", "string (secret)", "none", "The agents' message bus URL, into every VM's settings.", "implemented (tests/vms.rs)"),
    key("agent.ntp", "list of strings", "[]", "NTP servers, into the settings.", "implemented (tests/vms.rs)"),
    key("agent.blobstore", "object", "none", "The agents' blobstore, into the settings; secrets never logged.", "implemented (tests/vms.rs)"),
    key("registry", "object {endpoint or host/port, user, password}", "none", "Stemcell API v1 VMs: settings in the registry, a pointer in user data.", "implemented (tests/disks.rs)"),
    key("debug.cpi.api_version", "integer", "3 (clamped to 1..3)", "The CPI API version `info` answers.", "implemented (tests/config.rs)"),
    key("stemcell.kernel_id", "string", "none", "The incumbent's AKI for paravirtual images.", "refused by name when set: only hvm images are registered (reference::tests)"),
];

/// cloudfoundry/bosh-aws-cpi-release `jobs/aws_cpi/spec` at this commit,
/// every property in its order.
pub const INCUMBENT_COMMIT: &str = "f8ae83bd5ca528d85dc3757355849e6185d2e062";
pub const JOB: &[JobProperty] = &[
    JobProperty { property: "debug.cpi.api_version", default: "null (rendered 3)", goes_to: "`debug.cpi.api_version`" },
    JobProperty { property: "aws.credentials_source", default: "static", goes_to: "`aws.credentials_source`" },
    JobProperty { property: "aws.access_key_id", default: "null", goes_to: "`aws.access_key_id`" },
    JobProperty { property: "aws.secret_access_key", default: "null", goes_to: "`aws.secret_access_key`" },
    JobProperty { property: "aws.session_token", default: "null", goes_to: "`aws.session_token`" },
    JobProperty { property: "aws.role_arn", default: "null", goes_to: "`aws.role_arn`" },
    JobProperty { property: "aws.default_iam_instance_profile", default: "null", goes_to: "`aws.default_iam_instance_profile`" },
    JobProperty { property: "aws.default_key_name", default: "null", goes_to: "`aws.default_key_name`" },
    JobProperty { property: "aws.default_security_groups", default: "none", goes_to: "`aws.default_security_groups`" },
    JobProperty { property: "aws.region", default: "none", goes_to: "`aws.region`" },
    JobProperty { property: "aws.ec2_endpoint", default: "none", goes_to: "`aws.ec2_endpoint`" },
    JobProperty { property: "aws.elb_endpoint", default: "none", goes_to: "`aws.elb_endpoint`" },
    JobProperty { property: "aws.max_retries", default: "8", goes_to: "`aws.max_retries`" },
    JobProperty { property: "aws.dualstack", default: "false", goes_to: "`aws.dualstack`" },
    JobProperty { property: "aws.connection_options.ca_cert", default: "none", goes_to: "the job's `config/cacert.pem`, exported as `BOSH_CA_CERT_FILE`: trusted besides the system's CAs" },
    JobProperty { property: "aws.encrypted", default: "false", goes_to: "`aws.encrypted`" },
    JobProperty { property: "aws.kms_key_arn", default: "null", goes_to: "`aws.kms_key_arn`" },
    JobProperty { property: "aws.metadata_options", default: "null", goes_to: "`aws.metadata_options`" },
    JobProperty { property: "aws.enable_describe_instance_types", default: "true", goes_to: "`aws.enable_describe_instance_types`" },
    JobProperty { property: "registry.username", default: "none", goes_to: "`registry`" },
    JobProperty { property: "registry.password", default: "none", goes_to: "`registry`" },
    JobProperty { property: "registry.host", default: "none", goes_to: "`registry`" },
    JobProperty { property: "registry.port", default: "25777", goes_to: "`registry`" },
    JobProperty { property: "aws.stemcell.kernel_id", default: "none", goes_to: "`stemcell.kernel_id`" },
    JobProperty { property: "ntp", default: "[0.pool.ntp.org, 1.pool.ntp.org]", goes_to: "`agent.ntp`" },
    JobProperty { property: "agent.mbus", default: "none", goes_to: "`agent.mbus`" },
    JobProperty { property: "nats.user", default: "nats", goes_to: "`agent.mbus` (rendered into the URL when agent.mbus is unset)" },
    JobProperty { property: "nats.password", default: "none", goes_to: "`agent.mbus` (as nats.user)" },
    JobProperty { property: "agent.nats.address", default: "none", goes_to: "`agent.mbus` (as nats.user)" },
    JobProperty { property: "nats.address", default: "none", goes_to: "`agent.mbus` (as nats.user)" },
    JobProperty { property: "nats.port", default: "4222", goes_to: "`agent.mbus` (as nats.user)" },
    JobProperty { property: "env.http_proxy", default: "none", goes_to: "the job's bin/cpi exports it as HTTP_PROXY/http_proxy; the EC2 and EBS clients send their requests through it (credentials in the URL are used, never logged; tests/http_proxy.rs)" },
    JobProperty { property: "env.https_proxy", default: "none", goes_to: "exported as HTTPS_PROXY/https_proxy; the proxy for https endpoints (all of AWS's), as env.http_proxy" },
    JobProperty { property: "env.no_proxy", default: "none", goes_to: "exported as NO_PROXY/no_proxy; hosts reached directly (tests/http_proxy.rs)" },
];

/// VM `cloud_properties`, each key the incumbent's `cloud_props.rb` reads
/// (and the nested ones of `ephemeral_disk` and `root_disk`).
pub const VM_CLOUD_PROPERTIES: &[Key] = &[
    key(
        "instance_type",
        "string",
        "required",
        "The instance type; one EC2 refuses is answered naming the key and value.",
        "implemented (tests/vms.rs)",
    ),
    key(
        "availability_zone",
        "string",
        "the subnet's",
        "Must match the subnet's zone; a difference is refused naming both.",
        "implemented",
    ),
    key(
        "security_groups",
        "list of names or ids",
        "aws.default_security_groups",
        "Used when the network names none; names looked up in the subnet's VPC.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "key_name",
        "string",
        "aws.default_key_name",
        "Key pair.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "iam_instance_profile",
        "string (name or ARN)",
        "aws.default_iam_instance_profile",
        "Instance profile.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "placement_group",
        "string",
        "none",
        "Placement group name.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "tenancy",
        "string",
        "default",
        "`default` or `dedicated`.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "source_dest_check",
        "bool",
        "true",
        "false disables the ENI's source/destination check (NAT VMs).",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "auto_assign_public_ip",
        "bool",
        "none",
        "Read; the CPI's own ENI is attached by id, where EC2 assigns no public IP.",
        "read, no effect",
    ),
    key(
        "metadata_options",
        "object",
        "aws.metadata_options",
        "As the job property, per VM.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "tags",
        "object",
        "{}",
        "Tags on the instance and its volumes at launch.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "ephemeral_disk.size",
        "MiB",
        "10240",
        "EBS ephemeral disk at `/dev/sdb`.",
        "implemented (tests/vms.rs)",
    ),
    key(
        "ephemeral_disk.type",
        "string",
        "gp3",
        "Its volume type.",
        "implemented",
    ),
    key(
        "ephemeral_disk.iops",
        "integer",
        "none",
        "Its IOPS.",
        "implemented",
    ),
    key(
        "ephemeral_disk.throughput",
        "integer",
        "none",
        "Its throughput (gp3).",
        "implemented",
    ),
    key(
        "ephemeral_disk.encrypted",
        "bool",
        "aws.encrypted",
        "Its encryption.",
        "implemented",
    ),
    key(
        "ephemeral_disk.kms_key_arn",
        "string",
        "aws.kms_key_arn",
        "Its KMS key.",
        "implemented",
    ),
    key(
        "ephemeral_disk.use_instance_storage",
        "bool",
        "false",
        "The first instance store (`ephemeral0`) instead of EBS.",
        "implemented",
    ),
    key(
        "ephemeral_disk.use_root_disk",
        "bool",
        "false",
        "No ephemeral disk: the agent uses the root disk.",
        "implemented",
    ),
    key(
        "root_disk.size",
        "MiB",
        "the image's",
        "Root volume size.",
        "implemented (tests/create_vm_options.rs)",
    ),
    key(
        "root_disk.type",
        "string",
        "gp3",
        "Root volume type.",
        "implemented",
    ),
    key(
        "root_disk.iops",
        "integer",
        "none",
        "Root volume IOPS.",
        "implemented",
    ),
    key(
        "root_disk.throughput",
        "integer",
        "none",
        "Root volume throughput.",
        "implemented",
    ),
    key(
        "raw_instance_storage",
        "bool",
        "false",
        "All instance stores of the type as raw disks (agent `disks.raw_ephemeral`; the ephemeral disk on EBS). Device names as the Ruby CPI's: `/dev/xvdba`... (hvm), `/dev/sdc`... (paravirtual), NVMe stores left to EC2 and counted for the agent; a type without instance storage, or `ephemeral_disk.use_instance_storage` with it, is refused.",
        "implemented (tests/instance_storage.rs)",
    ),
    key(
        "spot_bid_price",
        "number (USD/h)",
        "none",
        "A spot instance: RunInstances with InstanceMarketOptions (one-time, terminate on interruption, MaxPrice the bid), as the Ruby CPI since it left RequestSpotInstances. A refused launch fails with VMCreationFailed (ok_to_retry false); a create failing after the launch cancels the instance's spot request.",
        "implemented (tests/spot.rs)",
    ),
    key(
        "spot_ondemand_fallback",
        "bool",
        "false",
        "On-demand when EC2 refuses the spot launch (never beside a spot instance a lost answer made).",
        "implemented (tests/spot.rs)",
    ),
    key(
        "elbs",
        "list of names",
        "[]",
        "Classic ELBs the VM is registered with once it runs (after its target groups). A missing one fails the create naming the key and the name, before anything is made; a registration that fails deregisters the VM from those it joined and terminates it. `delete_vm` terminates only, as the incumbent does: ELB drops terminated instances.",
        "implemented (tests/load_balancers.rs, read back with DescribeInstanceHealth; tests/sweep.rs)",
    ),
    key(
        "lb_target_groups",
        "list of names",
        "[]",
        "ALB/NLB target groups (looked up by name, DescribeTargetGroups) the VM is registered with by instance id once it runs; a missing one fails the create naming the key and the name, before anything is made. Deregistered when a later step of the create fails; on `delete_vm`, by ELBv2 itself when the VM terminates (as with the incumbent).",
        "implemented (tests/load_balancers.rs, read back with DescribeTargetHealth; tests/sweep.rs)",
    ),
    key(
        "advertised_routes.table_id",
        "string",
        "none",
        "With `destination`: a route table of the VM's VPC; a missing one is refused by key and id.",
        "implemented (tests/create_vm_options.rs, read back)",
    ),
    key(
        "advertised_routes.destination",
        "CIDR",
        "none",
        "The route (replaced when the table has it, else created) pointed at the VM once it runs.",
        "implemented (tests/create_vm_options.rs, read back)",
    ),
];

/// Disk, network and stemcell `cloud_properties`.
pub const OTHER_CLOUD_PROPERTIES: &[Key] = &[
    key("disk: type", "string", "gp3", "Volume type.", "implemented (tests/disks.rs)"),
    key("disk: iops", "integer", "none", "IOPS.", "implemented (tests/disks.rs)"),
    key("disk: throughput", "integer", "none", "Throughput.", "implemented"),
    key("disk: encrypted", "bool", "aws.encrypted", "Encryption.", "implemented (tests/disks.rs)"),
    key("disk: kms_key_arn", "string", "aws.kms_key_arn", "KMS key (when encrypted).", "implemented"),
    key("disk: tags", "object", "{}", "Tags at creation.", "implemented"),
    key("network: subnet", "string", "required (manual, dynamic)", "The subnet of the VM's ENI.", "implemented (tests/vms.rs)"),
    key("network: security_groups", "list of names or ids", "the VM's", "Groups of the ENI; win over the VM's.", "implemented (tests/create_vm_options.rs)"),
    key("stemcell: ami", "object {region: ami}", "none", "Light stemcell: the AMI of the configured region.", "implemented (tests/stemcells.rs)"),
    key("stemcell: name, version", "string", "none", "Read; not needed to register.", "read"),
    key("stemcell: disk", "MiB", "the image's size", "Heavy stemcell: the imported snapshot's size.", "implemented (tests/stemcells.rs)"),
    key("stemcell: architecture", "string", "x86_64", "`x86_64` or `arm64`.", "implemented"),
    key("stemcell: virtualization_type", "string", "hvm", "Only `hvm`; anything else refused by name.", "implemented"),
    key("stemcell: root_device_name", "string", "/dev/xvda", "The image's root device.", "implemented"),
    key("stemcell: boot_mode", "string", "EC2's", "`legacy-bios`, `uefi`, `uefi-preferred`.", "implemented"),
    key("stemcell: encrypted, kms_key_arn", "bool, string", "aws.encrypted, aws.kms_key_arn", "Heavy: an encrypted import; light: an encrypted copy of the AMI, owned and deleted by the CPI.", "implemented (tests/stemcells.rs)"),
    key("stemcell: tags", "object", "{}", "Tags on the image.", "implemented"),
];

/// The README's reference section, between its markers.
pub fn markdown() -> String {
    Reference {
        config_heading: "`cpi.json` (`cloud.properties`)",
        config: CONFIG,
        job_spec: "`jobs/aws_cpi/spec`",
        incumbent: "cloudfoundry/bosh-aws-cpi-release",
        incumbent_commit: INCUMBENT_COMMIT,
        job: JOB,
        vm_cloud_properties: VM_CLOUD_PROPERTIES,
        other_cloud_properties: OTHER_CLOUD_PROPERTIES,
    }
    .markdown()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpi::reference::{check_readme, leaf_paths};
    use serde_json::{json, Value};
    use std::collections::BTreeSet;

    #[test]
    fn the_readme_shows_this_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        check_readme(path, &markdown(), "cpi-aws");
    }

    /// A config with every key of the reference set.
    fn full() -> Value {
        json!({"cloud": {"plugin": "aws", "properties": {
            "aws": {"credentials_source": "static", "access_key_id": "AKIA", "secret_access_key": "ref-test-secret",
                    "session_token": "t", "role_arn": "arn:aws:iam::1:role/r",
                    "default_iam_instance_profile": "p", "default_key_name": "k",
                    "default_security_groups": ["g"], "max_retries": 2, "encrypted": true,
                    "kms_key_arn": "arn:k", "metadata_options": {"http_tokens": "required"},
                    "dualstack": false, "enable_describe_instance_types": true, "region": "us-east-1",
                    "ec2_endpoint": "ec2.us-east-1.amazonaws.com", "ebs_endpoint": "ebs.us-east-1.amazonaws.com",
                    "elb_endpoint": "elasticloadbalancing.us-east-1.amazonaws.com", "fast_path_delete": "yes"},
            "agent": {"mbus": "nats://u:ref-test-pw@h:4222", "ntp": ["ntp"], "blobstore": {"provider": "dav"}},
            "registry": {"endpoint": "http://r:25777", "user": "u", "password": "p"},
            "debug": {"cpi": {"api_version": 2}},
            "stemcell": {"kernel_id": "aki-1"}
        }}})
    }

    #[test]
    fn every_config_key_is_read_and_listed() {
        let parsed = cpi::config::parse::<crate::config::Config>(full()).unwrap();
        assert!(
            parsed.unknown_keys.is_empty(),
            "listed but not read: {:?}",
            parsed.unknown_keys
        );
        // Every key but the refused one validates; the refused one fails
        // naming itself.
        let refused = parsed.config.validate().unwrap_err().to_string();
        assert!(refused.contains("stemcell.kernel_id"), "{refused}");
        let mut accepted = full();
        accepted["cloud"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("stemcell");
        cpi::config::parse::<crate::config::Config>(accepted)
            .unwrap()
            .config
            .validate()
            .unwrap();
        let leaves = [
            "cloud.properties.aws.metadata_options",
            "cloud.properties.agent.blobstore",
            "cloud.properties.registry",
        ];
        let mut given = BTreeSet::new();
        leaf_paths(&full(), "", &leaves, &mut given);
        let given: BTreeSet<String> = given
            .into_iter()
            .map(|p| {
                p.trim_start_matches("cloud.properties.")
                    .trim_start_matches("cloud.")
                    .to_owned()
            })
            .collect();
        let listed: BTreeSet<String> = CONFIG.iter().map(|k| k.key.to_owned()).collect();
        assert_eq!(given, listed);
    }

    #[test]
    fn every_vm_cloud_property_is_read_and_listed() {
        let listed: Vec<&str> = VM_CLOUD_PROPERTIES.iter().map(|k| k.key).collect();
        assert_eq!(listed, crate::props::VM_KEYS);
        // Every listed key is one the type reads.
        let mut props = serde_json::Map::new();
        for k in crate::props::VM_KEYS {
            match k.split_once('.') {
                Some(("advertised_routes", inner)) => {
                    let o = props
                        .entry("advertised_routes")
                        .or_insert_with(|| json!([{}]));
                    o[0][inner] = json!("x");
                }
                Some((outer, inner)) => {
                    let o = props.entry(outer).or_insert_with(|| json!({}));
                    o[inner] = json!(null);
                }
                None => {
                    props.insert(k.to_string(), json!(null));
                }
            }
        }
        let parsed = cpi::config::parse::<crate::props::VmProps>(Value::Object(props)).unwrap();
        assert!(parsed.unknown_keys.is_empty(), "{:?}", parsed.unknown_keys);
    }

    #[test]
    fn every_incumbent_job_property_has_a_place() {
        // The property names of jobs/aws_cpi/spec at INCUMBENT_COMMIT.
        let incumbent = [
            "debug.cpi.api_version",
            "aws.credentials_source",
            "aws.access_key_id",
            "aws.secret_access_key",
            "aws.session_token",
            "aws.role_arn",
            "aws.default_iam_instance_profile",
            "aws.default_key_name",
            "aws.default_security_groups",
            "aws.region",
            "aws.ec2_endpoint",
            "aws.elb_endpoint",
            "aws.max_retries",
            "aws.dualstack",
            "aws.connection_options.ca_cert",
            "aws.encrypted",
            "aws.kms_key_arn",
            "aws.metadata_options",
            "aws.enable_describe_instance_types",
            "registry.username",
            "registry.password",
            "registry.host",
            "registry.port",
            "aws.stemcell.kernel_id",
            "ntp",
            "agent.mbus",
            "nats.user",
            "nats.password",
            "agent.nats.address",
            "nats.address",
            "nats.port",
            "env.http_proxy",
            "env.https_proxy",
            "env.no_proxy",
        ];
        let ours: Vec<&str> = JOB.iter().map(|p| p.property).collect();
        assert_eq!(ours, incumbent);
        for p in JOB {
            let k = p
                .goes_to
                .split('`')
                .nth(1)
                .filter(|_| p.goes_to.starts_with('`'));
            if let Some(k) = k {
                assert!(
                    CONFIG.iter().any(|c| c.key == k),
                    "{} goes to {k}, not in CONFIG",
                    p.property
                );
            }
        }
    }
}
