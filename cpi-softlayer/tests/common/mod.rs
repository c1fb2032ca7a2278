//! Runs the real cpi-softlayer binary against an in-process fake SoftLayer
//! (and the harness's fake registry), as the director would.
#![allow(dead_code)]

use fake_softlayer::SoftLayerEnvironment;
use harness::cpi::{Cpi, Reply, WireError};
use harness::registry::RegistryServer;
use harness::Environment;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

pub struct Setup {
    pub env: SoftLayerEnvironment,
    pub registry: RegistryServer,
    /// CPI API v2, stemcell API v2 (settings in user metadata).
    pub cpi: Cpi,
}

pub fn setup() -> Setup {
    let registry = RegistryServer::start().expect("registry starts");
    let env = SoftLayerEnvironment::start(
        Path::new(env!("CARGO_BIN_EXE_cpi-softlayer")),
        registry.endpoint(),
    )
    .expect("fake SoftLayer starts");
    let cpi = Cpi::new(env.cpi(), Duration::from_secs(120)).expect("runner");
    Setup { env, registry, cpi }
}

impl Setup {
    pub fn call(&self, method: &str, args: Value) -> Reply {
        self.call_with(&self.cpi, method, args)
    }

    pub fn call_with(&self, cpi: &Cpi, method: &str, args: Value) -> Reply {
        let args = args.as_array().cloned().expect("arguments are a list");
        cpi.call(method, args)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// The result of a call that must succeed.
    pub fn ok(&self, method: &str, args: Value) -> Value {
        let r = self.call(method, args);
        assert!(
            r.error.is_none(),
            "{method} failed: {:?}\nstderr: {}",
            r.error,
            r.stderr
        );
        r.result
    }

    /// The error of a call that must fail.
    pub fn err(&self, method: &str, args: Value) -> WireError {
        let r = self.call(method, args);
        r.error
            .unwrap_or_else(|| panic!("{method} succeeded with {:?}, expected an error", r.result))
    }

    pub fn stemcell(&self) -> String {
        let props = self
            .env
            .light_stemcell_properties()
            .expect("light stemcells");
        self.ok("create_stemcell", json!(["/tmp/unused-image", props]))
            .as_str()
            .expect("cid")
            .to_owned()
    }

    pub fn create_vm_args(&self, stemcell: &str, network: Value) -> Value {
        json!(["agent-1", stemcell, self.env.vm_cloud_properties(), {"default": network}, [],
               {"bosh": {"password": "hashed-vcap-password"}}])
    }

    /// A VM on a dynamic network; its cid.
    pub fn vm(&self) -> String {
        let stemcell = self.stemcell();
        let r = self.ok(
            "create_vm",
            self.create_vm_args(&stemcell, self.env.dynamic_network()),
        );
        r[0].as_str()
            .expect("v2 answers [cid, networks]")
            .to_owned()
    }

    pub fn disk(&self, vm: &str) -> String {
        self.ok(
            "create_disk",
            json!([10240, self.env.disk_cloud_properties(), vm]),
        )
        .as_str()
        .expect("cid")
        .to_owned()
    }

    pub fn guests(&self) -> usize {
        self.env.fake.with_state(|s| s.guests.len())
    }

    /// Shortens the CPI's waits for tests that run into them.
    pub fn short_waits(&self, vm_ready: f64, api_retry: f64) {
        self.env
            .edit_config(|c| {
                c["cloud"]["properties"]["softlayer"]["timeouts"] =
                    json!({"vm_ready": vm_ready, "vm_delete": 2, "disk_ready": 2, "api_retry": api_retry, "request": 5, "poll_max": 0.05});
            })
            .expect("config edits");
    }
}
