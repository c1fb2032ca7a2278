//! Shared by the tests: the warden environment (fake Garden in-process,
//! temp dirs, cpi.json), a CPI runner on the real binary, and helpers.
#![allow(dead_code)]

use fake_garden::environment::{rootfs_members, WardenEnvironment};
use flate2::write::GzEncoder;
use harness::cpi::{Cpi, Reply};
use harness::registry::RegistryServer;
use harness::Environment;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

pub struct World {
    pub env: WardenEnvironment,
    pub cpi: Cpi,
    pub registry: RegistryServer,
    pub image: PathBuf,
}

impl World {
    pub fn new() -> World {
        let registry = RegistryServer::start().expect("registry");
        let env = WardenEnvironment::start(
            env!("CARGO_BIN_EXE_cpi-warden").as_ref(),
            Some(registry.endpoint()),
        )
        .expect("environment");
        let cpi = Cpi::new(env.cpi(), Duration::from_secs(120)).expect("cpi");
        let image = env.root().join("image.tgz");
        let mut tar = tar::Builder::new(GzEncoder::new(
            std::fs::File::create(&image).unwrap(),
            flate2::Compression::fast(),
        ));
        for (name, data) in rootfs_members() {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            tar.append_data(&mut h, name, &data[..]).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        World {
            env,
            cpi,
            registry,
            image,
        }
    }

    /// The CPI run with a config edited from the environment's: written
    /// beside it as `name`.
    pub fn cpi_with(&self, name: &str, edit: impl FnOnce(&mut Value)) -> Cpi {
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(self.env.config_path()).unwrap()).unwrap();
        edit(&mut config);
        let path = self.env.root().join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        self.cpi
            .with_args(vec![format!("-configPath={}", path.display())])
    }

    /// Calls and expects success; the result.
    pub fn ok(&self, method: &str, args: Vec<Value>) -> Value {
        ok_with(&self.cpi, method, args)
    }

    /// Calls and expects a CPI error; its type and message.
    pub fn err(&self, method: &str, args: Vec<Value>) -> (String, String) {
        err_with(&self.cpi, method, args)
    }

    pub fn stemcell(&self) -> String {
        self.ok("create_stemcell", vec![json!(self.image), json!({})])
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A v2 VM on manual IP 10.244.0.(10+n).
    pub fn vm(&self, stemcell: &str, n: u8) -> String {
        let r = self.ok(
            "create_vm",
            vec![
                json!("agent-1"),
                json!(stemcell),
                json!({}),
                json!({"default": self.env.manual_network(n)}),
                json!([]),
                json!({"bosh": {"password": "vm-env-secret-pw"}}),
            ],
        );
        r[0].as_str().unwrap().to_owned()
    }

    /// Nothing left: no containers, disks, mounts, loop devices, dirs.
    pub fn assert_empty(&self) {
        let inv = self.env.inventory();
        assert!(inv.vms.is_empty(), "containers left: {:?}", inv.vms);
        assert!(inv.disks.is_empty(), "disks left: {:?}", inv.disks);
        assert!(
            inv.stemcells.is_empty(),
            "stemcells left: {:?}",
            inv.stemcells
        );
        assert!(inv.other.is_empty(), "left behind: {:?}", inv.other);
    }

    /// No secret of the config or the director's env in any stderr or log.
    pub fn assert_no_secrets(&self) {
        let mut secrets = self.env.secrets();
        secrets.push("vm-env-secret-pw".into());
        for call in self.cpi.transcript() {
            for s in &secrets {
                assert!(
                    !call.stderr.contains(s.as_str()),
                    "{} leaked a secret on stderr: {}",
                    call.method,
                    call.stderr
                );
                let log = serde_json::from_str::<Value>(&call.stdout)
                    .ok()
                    .and_then(|v| v["log"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                assert!(
                    !log.contains(s.as_str()),
                    "{} leaked a secret in log",
                    call.method
                );
            }
        }
    }
}

pub fn ok_with(cpi: &Cpi, method: &str, args: Vec<Value>) -> Value {
    let r: Reply = cpi
        .call(method, args)
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    if let Some(e) = r.error {
        panic!(
            "{method} failed: {} {}\nstderr: {}",
            e.kind, e.message, r.stderr
        );
    }
    r.result
}

pub fn err_with(cpi: &Cpi, method: &str, args: Vec<Value>) -> (String, String) {
    let r: Reply = cpi
        .call(method, args)
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    let e = r.error.unwrap_or_else(|| {
        panic!(
            "{method} succeeded with {} where an error was expected",
            r.result
        )
    });
    (e.kind, e.message)
}
