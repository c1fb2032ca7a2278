//! What every cpi-aws test needs: moto with a seeded cloud (one per test,
//! so that tests cannot see each other's resources), a registry, and the
//! real binary to call.
#![allow(dead_code)]

use env_aws::AwsEnvironment;
use harness::cpi::{Cpi, Reply};
use harness::registry::RegistryServer;
use harness::Environment;
use serde_json::{json, Value};
use std::time::Duration;

pub struct Fixture {
    pub cpi: Cpi,
    pub env: AwsEnvironment,
    pub registry: RegistryServer,
}

/// A fresh moto and CPI config; None (with a loud message) only when moto
/// is not installed. `make test` installs it, so there it always runs.
pub fn fixture() -> Option<Fixture> {
    if env_aws::moto::binary().is_none() {
        eprintln!(
            "\n\n*** SKIPPED: moto_server is not installed (set MOTO_SERVER or run \
             `python3 -m venv .venv && .venv/bin/pip install 'moto[server]==5.2.5'` at the workspace root) ***\n\n"
        );
        return None;
    }
    let registry = RegistryServer::start().expect("registry starts");
    let env = AwsEnvironment::start(env!("CARGO_BIN_EXE_cpi-aws").as_ref(), registry.endpoint())
        .expect("moto starts");
    let cpi = Cpi::new(env.cpi(), Duration::from_secs(300)).expect("cpi");
    Some(Fixture { cpi, env, registry })
}

impl Fixture {
    /// Calls and expects success; answers the result.
    pub fn ok(&self, method: &str, args: Vec<Value>) -> Value {
        let r = self.call(method, args);
        if let Some(e) = &r.error {
            panic!(
                "{method} failed: {} {}\nstderr: {}",
                e.kind, e.message, r.stderr
            );
        }
        r.result
    }

    pub fn call(&self, method: &str, args: Vec<Value>) -> Reply {
        self.cpi
            .call(method, args)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Calls and expects an error of this type; answers it.
    pub fn err(&self, method: &str, args: Vec<Value>, kind: &str) -> harness::cpi::WireError {
        let r = self.call(method, args);
        let e = r.error.unwrap_or_else(|| {
            panic!(
                "{method} succeeded ({}) but should fail with {kind}",
                r.result
            )
        });
        assert_eq!(e.kind, kind, "{method}: {}", e.message);
        e
    }

    pub fn light_stemcell(&self) -> String {
        let props = self.env.light_stemcell_properties().unwrap();
        self.ok("create_stemcell", vec![json!("/dev/null"), props])
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn env_hash() -> Value {
        json!({"bosh": {"password": "vm-password-hash-3e1f", "group": "deployment-web", "groups": ["director", "web"]}})
    }

    /// A VM on a manual network; answers its cid.
    pub fn create_vm(&self, stemcell: &str, n: u8, disks: Vec<String>) -> String {
        let r = self.ok(
            "create_vm",
            vec![
                json!("agent-1"),
                json!(stemcell),
                self.env.vm_cloud_properties(),
                json!({"default": self.env.manual_network(n)}),
                json!(disks),
                Self::env_hash(),
            ],
        );
        r[0].as_str()
            .expect("v2 create_vm answers [cid, networks]")
            .to_owned()
    }
}

/// Asserts the cloud holds what it held before, printing only the difference.
pub fn assert_nothing_left(before: &harness::Inventory, after: &harness::Inventory) {
    fn diff(kind: &str, a: &[String], b: &[String], out: &mut Vec<String>) {
        for x in b.iter().filter(|x| !a.contains(x)) {
            out.push(format!("{kind} left behind: {x}"));
        }
        for x in a.iter().filter(|x| !b.contains(x)) {
            out.push(format!("{kind} gone that was there before: {x}"));
        }
    }
    let mut out = Vec::new();
    diff("vm", &before.vms, &after.vms, &mut out);
    diff("disk", &before.disks, &after.disks, &mut out);
    diff("stemcell", &before.stemcells, &after.stemcells, &mut out);
    diff("snapshot", &before.snapshots, &after.snapshots, &mut out);
    diff("other", &before.other, &after.other, &mut out);
    assert!(out.is_empty(), "{}", out.join("\n"));
}
