//! The conformance environment for cpi-aws: a moto EC2/EBS/ELB server on a
//! loopback port, seeded with a VPC, subnet, security group, key pair and a
//! light-stemcell AMI, and inspected through aws-sdk-ec2. Nothing here
//! reaches AWS.

pub mod cloud;
pub mod load_balancers;
pub mod moto;
pub mod proxy;

use cloud::Seed;
use harness::{
    Chaos, ChaosCounts, CpiCommand, Environment, Fault, Inventory, RegistryEndpoint, Served,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use moto::MotoServer;

/// Fixed, fake credentials: moto accepts any; the suite checks they never
/// reach a log.
pub const ACCESS_KEY: &str = "AKIAENVAWSTESTKEY001";
pub const SECRET_KEY: &str = "env-aws-secret-key-do-not-log-7f3a";
pub const MBUS_PASSWORD: &str = "env-aws-mbus-password-91c2";
pub const BLOBSTORE_PASSWORD: &str = "env-aws-blobstore-password-5d0e";
pub const REGION: &str = "us-east-1";

pub struct AwsEnvironment {
    cpi_binary: PathBuf,
    config: PathBuf,
    registry: RegistryEndpoint,
    seed: Seed,
    cloud: cloud::Inspector,
    _dir: tempfile::TempDir,
    /// The CPI's way to moto, where faults are injected.
    proxy: proxy::FaultProxy,
    // Dropped last: the server outlives the client that talks to it.
    pub moto: MotoServer,
}

/// Starts moto, seeds it and writes the CPI's config.
pub fn start_environment(
    cpi_binary: &Path,
    registry: &RegistryEndpoint,
) -> Result<Box<dyn Environment>, String> {
    Ok(Box::new(AwsEnvironment::start(cpi_binary, registry)?))
}

impl AwsEnvironment {
    pub fn start(cpi_binary: &Path, registry: &RegistryEndpoint) -> Result<AwsEnvironment, String> {
        let moto = MotoServer::start()?;
        let cloud = cloud::Inspector::new(&moto.endpoint())?;
        let seed = cloud.seed()?;
        let proxy = proxy::FaultProxy::start(moto.port)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = dir.path().join("cpi.json");
        let env = AwsEnvironment {
            cpi_binary: cpi_binary.to_owned(),
            config,
            registry: registry.clone(),
            seed,
            cloud,
            _dir: dir,
            proxy,
            moto,
        };
        std::fs::write(&env.config, env.config_json().to_string()).map_err(|e| e.to_string())?;
        Ok(env)
    }

    /// The `cpi.json` the aws_cpi job would render, pointed at moto.
    pub fn config_json(&self) -> Value {
        let endpoint = format!("http://127.0.0.1:{}", self.proxy.port);
        json!({"cloud": {"plugin": "aws", "properties": {
            "aws": {
                "credentials_source": "static", "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
                "session_token": null, "role_arn": null, "default_iam_instance_profile": null,
                "default_key_name": cloud::KEY_NAME, "default_security_groups": [cloud::SECURITY_GROUP],
                "max_retries": 3, "encrypted": false, "kms_key_arn": null, "metadata_options": null,
                "dualstack": false, "enable_describe_instance_types": true, "region": REGION,
                "ec2_endpoint": endpoint, "ebs_endpoint": endpoint, "elb_endpoint": endpoint
            },
            "agent": {
                "ntp": ["0.pool.ntp.org", "1.pool.ntp.org"],
                "mbus": format!("https://mbus:{MBUS_PASSWORD}@0.0.0.0:6868"),
                "blobstore": {"provider": "dav", "options": {
                    "endpoint": "http://10.0.0.6:25250", "user": "agent", "password": BLOBSTORE_PASSWORD}}
            },
            "registry": {"endpoint": self.registry.url, "user": self.registry.username, "password": self.registry.password},
            "debug": {"cpi": {"api_version": 2}}
        }}})
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn seed(&self) -> &Seed {
        &self.seed
    }

    pub fn inspector(&self) -> &cloud::Inspector {
        &self.cloud
    }

    /// The proxy between the CPI and moto, for faults aimed at one action.
    pub fn proxy(&self) -> &proxy::FaultProxy {
        &self.proxy
    }
}

impl Environment for AwsEnvironment {
    fn name(&self) -> &str {
        "cpi-aws"
    }

    fn cpi(&self) -> CpiCommand {
        CpiCommand {
            binary: self.cpi_binary.clone(),
            args: vec![self.config.display().to_string()],
            env: vec![],
        }
    }

    fn heavy_stemcell_properties(&self) -> Option<Value> {
        Some(
            json!({"name": "bosh-aws-xen-hvm-ubuntu-jammy-go_agent", "version": "1.0", "disk": 1024,
                    "architecture": "x86_64", "virtualization_type": "hvm", "root_device_name": "/dev/xvda"}),
        )
    }

    fn light_stemcell_properties(&self) -> Option<Value> {
        Some(
            json!({"name": "bosh-aws-xen-hvm-ubuntu-jammy-go_agent", "version": "1.0",
                    "ami": {REGION: self.seed.light_ami}}),
        )
    }

    fn vm_cloud_properties(&self) -> Value {
        json!({"instance_type": "m5.large", "availability_zone": self.seed.zone,
               "ephemeral_disk": {"size": 4096, "type": "gp3"}})
    }

    fn bad_vm_cloud_properties(&self) -> (Value, &'static str) {
        (
            json!({"instance_type": "m9.nonexistent", "availability_zone": self.seed.zone}),
            "instance_type",
        )
    }

    fn manual_network(&self, n: u8) -> Value {
        json!({"type": "manual", "ip": format!("10.0.0.{}", 10u16 + n as u16), "netmask": "255.255.255.0",
               "gateway": "10.0.0.1", "dns": ["10.0.0.2"], "default": ["dns", "gateway"],
               "cloud_properties": {"subnet": self.seed.subnet}})
    }

    fn dynamic_network(&self) -> Value {
        json!({"type": "dynamic", "dns": ["10.0.0.2"], "default": ["dns", "gateway"],
               "cloud_properties": {"subnet": self.seed.subnet}})
    }

    fn disk_cloud_properties(&self) -> Value {
        json!({"type": "gp3"})
    }

    fn inventory(&self) -> Inventory {
        self.cloud.inventory()
    }

    fn vm_exists(&self, vm: &str) -> bool {
        self.cloud.vm_exists(vm)
    }

    fn vm_ip(&self, vm: &str) -> Option<String> {
        self.cloud.vm_ip(vm)
    }

    fn vm_metadata(&self, vm: &str) -> BTreeMap<String, String> {
        self.cloud.tags(vm)
    }

    fn agent_settings(&self, vm: &str) -> Option<Value> {
        self.cloud.user_data(vm)
    }

    fn destroy_vm_out_of_band(&self, vm: &str) {
        self.cloud.terminate(vm)
    }

    fn disk_exists(&self, disk: &str) -> bool {
        self.cloud.volume(disk).is_some()
    }

    fn disk_attached_to(&self, disk: &str) -> Option<String> {
        self.cloud.volume(disk).and_then(|v| v.attached_to)
    }

    fn disk_size_mb(&self, disk: &str) -> Option<u64> {
        self.cloud.volume(disk).map(|v| v.size_gib * 1024)
    }

    fn disk_metadata(&self, disk: &str) -> BTreeMap<String, String> {
        self.cloud.tags(disk)
    }

    fn write_on_disk(
        &self,
        _vm: &str,
        _disk: &str,
        _name: &str,
        _data: &[u8],
    ) -> Option<Result<(), String>> {
        // moto keeps no volume contents.
        None
    }

    fn read_on_disk(&self, _vm: &str, _disk: &str, _name: &str) -> Option<Result<Vec<u8>, String>> {
        None
    }

    fn inject(&self, fault: Fault) -> bool {
        self.proxy.inject(fault)
    }

    fn clear_faults(&self) {
        self.proxy.clear()
    }

    fn chaos(&self, chaos: Option<Chaos>) -> bool {
        self.proxy.set_chaos(chaos);
        true
    }

    fn chaos_counts(&self) -> ChaosCounts {
        self.proxy.chaos_counts()
    }

    fn served(&self) -> Option<Served> {
        Some(Served {
            requests: self.proxy.served(),
        })
    }

    fn reset_served(&self) {
        self.proxy.reset_served()
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            SECRET_KEY.into(),
            MBUS_PASSWORD.into(),
            BLOBSTORE_PASSWORD.into(),
            self.registry.password.clone(),
        ]
    }
}
