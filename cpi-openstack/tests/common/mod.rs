//! A fake OpenStack in-process, a CPI config pointing at it, and the real
//! `cpi-openstack` binary to call.
#![allow(dead_code)]

use fake_openstack::FakeOpenStack;
use harness::cpi::{Cpi, WireError};
use harness::registry::RegistryServer;
use harness::CpiCommand;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub const PASSWORD: &str = "os-test-pw-51f3";

pub struct World {
    pub fake: FakeOpenStack,
    pub cpi: Cpi,
    pub registry: RegistryServer,
    pub dir: tempfile::TempDir,
}

pub fn world() -> World {
    world_with(|_| {})
}

/// A world whose `cloud.properties` `edit` changes first.
pub fn world_with(edit: impl FnOnce(&mut Value)) -> World {
    let fake = FakeOpenStack::start(PASSWORD).expect("fake starts");
    let registry = RegistryServer::start().expect("registry starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = fake_openstack::cpi_config(&fake, PASSWORD, Some(registry.endpoint()));
    edit(&mut config["cloud"]["properties"]);
    let config_path = dir.path().join("cpi.json");
    let cacert = dir.path().join("cacert.pem");
    std::fs::write(&config_path, config.to_string()).unwrap();
    std::fs::write(&cacert, "").unwrap();
    let command = CpiCommand {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_cpi-openstack")),
        args: vec![
            config_path.display().to_string(),
            cacert.display().to_string(),
        ],
        env: vec![],
    };
    let cpi = Cpi::new(command, Duration::from_secs(120)).expect("cpi runner");
    World {
        fake,
        cpi,
        registry,
        dir,
    }
}

impl World {
    pub fn ok(&self, method: &str, args: Vec<Value>) -> Value {
        let reply = self
            .cpi
            .call(method, args)
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        if let Some(e) = reply.error {
            panic!(
                "{method} failed: {} {}\nstderr: {}",
                e.kind, e.message, reply.stderr
            );
        }
        reply.result
    }

    pub fn err(&self, method: &str, args: Vec<Value>) -> WireError {
        let reply = self
            .cpi
            .call(method, args)
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        reply
            .error
            .unwrap_or_else(|| panic!("{method} succeeded: {}", reply.result))
    }

    /// A heavy stemcell's `image` file holding `root.img` of `size` bytes.
    pub fn image_file(&self, size: usize) -> PathBuf {
        let path = self.dir.path().join(format!("image-{size}"));
        let file = std::fs::File::create(&path).unwrap();
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let mut header = tar::Header::new_gnu();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "root.img", data.as_slice())
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
        path
    }

    pub fn heavy_stemcell(&self) -> String {
        let image = self.image_file(3 << 20);
        let props = json!({"name": "bosh-openstack-kvm-ubuntu", "version": "1.5", "disk_format": "qcow2",
            "container_format": "bare", "os_type": "linux", "auto_disk_config": true, "hypervisor": "kvm"});
        self.ok("create_stemcell", vec![json!(image), props])
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn light_stemcell(&self) -> String {
        let props =
            json!({"name": "light", "version": "1", "image_id": fake_openstack::LIGHT_IMAGE_ID});
        self.ok("create_stemcell", vec![json!("/nonexistent"), props])
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn manual(ip: &str) -> Value {
        json!({"type": "manual", "ip": ip, "netmask": "255.255.255.0", "gateway": "10.0.0.1", "dns": ["10.0.0.2"],
            "default": ["dns", "gateway"], "cloud_properties": {"net_id": fake_openstack::NET_ID}})
    }

    pub fn create_vm(
        &self,
        stemcell: &str,
        props: Value,
        networks: Value,
    ) -> Result<String, WireError> {
        let reply = self
            .cpi
            .call(
                "create_vm",
                vec![
                    json!("agent-1"),
                    json!(stemcell),
                    props,
                    networks,
                    json!([]),
                    json!({"bosh": {"password": "env-pw-hash"}}),
                ],
            )
            .expect("create_vm runs");
        match reply.error {
            Some(e) => Err(e),
            None => Ok(reply.result[0]
                .as_str()
                .expect("v2 answers [cid, networks]")
                .to_owned()),
        }
    }

    pub fn count_calls(&self, line: &str) -> usize {
        self.fake
            .calls()
            .iter()
            .filter(|c| c.as_str() == line)
            .count()
    }
}
