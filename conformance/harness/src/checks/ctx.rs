//! What a check works with: the environment, the CPI, the registry, and
//! helpers that make the director's calls and remember what was made so that
//! it is removed after the check, passed or failed.

use super::{describe, fail, skip, Outcome, Stop};
use crate::cpi::{Cpi, Reply, WireError};
use crate::environment::{Environment, Inventory};
use crate::registry::RegistryServer;
use crate::stemcell::{unpack, Image, StemcellSpec};
use serde_json::{json, Value};
use std::path::PathBuf;

/// What the CPI's `info` answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Info {
    pub api_version: u32,
    pub stemcell_formats: Vec<String>,
}

/// What a check made, to remove afterwards.
#[derive(Default)]
struct Made {
    stemcells: Vec<String>,
    vms: Vec<String>,
    disks: Vec<String>,
    snapshots: Vec<String>,
    attachments: Vec<(String, String)>,
    /// The stemcell API version each VM was made with: the director sends
    /// it with every later call about that VM.
    vm_stemcell_api: std::collections::HashMap<String, u32>,
}

pub struct Ctx<'a> {
    pub env: &'a dyn Environment,
    pub registry: &'a RegistryServer,
    /// The CPI at the versions the director would choose.
    pub cpi: Cpi,
    pub info: Info,
    /// The cloud's inventory before the first check.
    pub start_inventory: Inventory,
    /// The `env.bosh.password` sent with every `create_vm`.
    pub env_password: String,
    work: tempfile::TempDir,
    made: Made,
    counter: u32,
}

impl<'a> Ctx<'a> {
    pub fn new(
        env: &'a dyn Environment,
        registry: &'a RegistryServer,
        cpi: Cpi,
    ) -> Result<Ctx<'a>, String> {
        let work = tempfile::Builder::new()
            .prefix("conformance-")
            .tempdir()
            .map_err(|e| format!("making a work directory: {e}"))?;
        let reply = cpi.call("info", vec![]).map_err(|e| format!("info: {e}"))?;
        if let Some(e) = reply.error {
            return Err(format!("info: {}", describe(&e)));
        }
        let info = Info {
            api_version: reply.result["api_version"].as_u64().unwrap_or(1) as u32,
            stemcell_formats: reply.result["stemcell_formats"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        };
        // The director speaks v2 at most; older CPIs get what they report.
        let api = info.api_version.clamp(1, 2);
        let cpi = cpi.with_versions(api, if api >= 2 { 2 } else { 1 });
        Ok(Ctx {
            start_inventory: env.inventory(),
            env,
            registry,
            cpi,
            info,
            env_password: format!("$6$conformance${}", uuid::Uuid::new_v4().simple()),
            work,
            made: Made::default(),
            counter: 0,
        })
    }

    /// A number unique in this run (IPs, agent ids, file names).
    pub fn unique(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    pub fn agent_id(&mut self) -> String {
        format!(
            "agent-{}-{}",
            self.unique(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    /// The director's `env` for `create_vm`, with a password to look for in logs.
    pub fn vm_env(&self) -> Value {
        json!({"bosh": {"password": self.env_password, "group": "conformance-deployment-web",
                        "groups": ["conformance-director", "conformance-deployment", "web"]},
               "persistent_disk_fs": "ext4"})
    }

    /// `{"default": <a manual network with the next free IP>}`.
    pub fn manual_networks(&mut self) -> Value {
        let n = (self.unique() % 200 + 10) as u8;
        json!({"default": self.env.manual_network(n)})
    }

    pub fn dynamic_networks(&self) -> Value {
        json!({"default": self.env.dynamic_network()})
    }

    /// The registry key of a VM's settings: what the environment says
    /// (`Environment::registry_key`), else its cid, else the server name its
    /// user data gives (the OpenStack CPI keys the registry by server name,
    /// and the agent looks itself up by that name).
    pub fn registry_key(&self, vm: &str) -> String {
        let said = self.env.registry_key(vm);
        let server_name = self.env.agent_settings(vm).and_then(|ud| {
            ud.pointer("/server/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        [Some(said.clone()), Some(vm.to_owned()), server_name]
            .into_iter()
            .flatten()
            .find(|key| self.registry.settings(key).is_some())
            .unwrap_or(said)
    }

    // ---- Calls ----

    /// Calls and expects success.
    pub fn ok(&self, cpi: &Cpi, method: &str, args: Vec<Value>) -> Result<Value, Stop> {
        let reply = cpi.call(method, args)?;
        match reply.error {
            None => Ok(reply.result),
            Some(e) => fail!("{method}: {}", describe(&e)),
        }
    }

    /// Calls and expects an error.
    pub fn err(&self, cpi: &Cpi, method: &str, args: Vec<Value>) -> Result<WireError, Stop> {
        let reply = cpi.call(method, args)?;
        match reply.error {
            Some(e) => Ok(e),
            None => fail!("{method}: expected an error, got result {}", reply.result),
        }
    }

    /// Calls and gives the whole reply, error or not.
    pub fn reply(&self, cpi: &Cpi, method: &str, args: Vec<Value>) -> Result<Reply, Stop> {
        Ok(cpi.call(method, args)?)
    }

    // ---- Stemcells ----

    /// A stemcell tarball written and unpacked as the director does:
    /// `(image_path, cloud_properties)` for `create_stemcell`.
    pub fn stemcell_args(
        &mut self,
        image: Image,
        api_version: u32,
        props: Value,
    ) -> Result<(PathBuf, Value), Stop> {
        let n = self.unique();
        let dir = self.work.path().join(format!("stemcell-{n}"));
        std::fs::create_dir_all(&dir).map_err(|e| Stop::Fail(format!("work dir: {e}")))?;
        let spec = StemcellSpec::new(
            api_version,
            self.info.stemcell_formats.clone(),
            props,
            image,
        );
        let tgz = dir.join("stemcell.tgz");
        spec.write(&tgz)
            .map_err(|e| Stop::Fail(format!("writing the stemcell tarball: {e}")))?;
        let unpacked = dir.join("unpacked");
        std::fs::create_dir_all(&unpacked).map_err(|e| Stop::Fail(format!("work dir: {e}")))?;
        let u = unpack(&tgz, &unpacked).map_err(Stop::Fail)?;
        Ok((u.image_path, u.cloud_properties))
    }

    /// Imports a stemcell the cloud can use: heavy where it imports, else light.
    pub fn stemcell(&mut self) -> Result<String, Stop> {
        let api = self.cpi.stemcell_api_version;
        let (image, props) = match (
            self.env.heavy_stemcell_properties(),
            self.env.light_stemcell_properties(),
        ) {
            (Some(p), _) => (Image::Heavy(self.env.heavy_stemcell_image()), p),
            (None, Some(p)) => (Image::Light, p),
            (None, None) => {
                skip!("the environment has neither heavy nor light stemcell properties")
            }
        };
        self.create_stemcell(image, api, props)
    }

    pub fn create_stemcell(
        &mut self,
        image: Image,
        api_version: u32,
        props: Value,
    ) -> Result<String, Stop> {
        let (path, props) = self.stemcell_args(image, api_version, props)?;
        let cpi = self.cpi.clone();
        let cid = self.ok(&cpi, "create_stemcell", vec![json!(path), props])?;
        let cid = as_cid("create_stemcell", &cid)?;
        self.made.stemcells.push(cid.clone());
        Ok(cid)
    }

    pub fn delete_stemcell(&mut self, cid: &str) -> Outcome {
        let cpi = self.cpi.clone();
        self.ok(&cpi, "delete_stemcell", vec![json!(cid)])?;
        self.made.stemcells.retain(|c| c != cid);
        Ok(())
    }

    // ---- VMs ----

    /// `create_vm` with the environment's VM properties; answers the cid and
    /// the v2 networks (null under v1).
    /// `create_vm`'s six arguments, in the director's order.
    pub fn create_vm_args(
        &self,
        agent_id: &str,
        stemcell: &str,
        cloud_properties: Value,
        networks: Value,
        disks: &[String],
    ) -> Vec<Value> {
        vec![
            json!(agent_id),
            json!(stemcell),
            cloud_properties,
            networks,
            json!(disks),
            self.vm_env(),
        ]
    }

    pub fn create_vm_with(
        &mut self,
        cpi: &Cpi,
        agent_id: &str,
        stemcell: &str,
        networks: &Value,
        disks: &[String],
    ) -> Result<(String, Value), Stop> {
        let props = self.env.vm_cloud_properties();
        let args = self.create_vm_args(agent_id, stemcell, props, networks.clone(), disks);
        let result = self.ok(cpi, "create_vm", args)?;
        let (cid, nets) = match (&result, cpi.api_version) {
            (Value::Array(pair), v) if v >= 2 && pair.len() == 2 => {
                (as_cid("create_vm", &pair[0])?, pair[1].clone())
            }
            (Value::String(_), 1) => (as_cid("create_vm", &result)?, Value::Null),
            (other, v) => {
                // Still remove whatever the answer names, then fail.
                if let Some(c) = other
                    .as_str()
                    .or_else(|| other.get(0).and_then(Value::as_str))
                {
                    self.made.vms.push(c.to_owned());
                }
                fail!("create_vm (API v{v}): unexpected result shape {other}")
            }
        };
        self.made.vms.push(cid.clone());
        self.made
            .vm_stemcell_api
            .insert(cid.clone(), cpi.stemcell_api_version);
        Ok((cid, nets))
    }

    /// `create_vm` on a manual network, the common case.
    pub fn create_vm(&mut self, stemcell: &str) -> Result<String, Stop> {
        let agent = self.agent_id();
        let nets = self.manual_networks();
        let cpi = self.cpi.clone();
        Ok(self.create_vm_with(&cpi, &agent, stemcell, &nets, &[])?.0)
    }

    pub fn delete_vm(&mut self, vm: &str) -> Outcome {
        let cpi = self.cpi.clone();
        self.ok(&cpi, "delete_vm", vec![json!(vm)])?;
        self.made.vms.retain(|c| c != vm);
        self.made.attachments.retain(|(v, _)| v != vm);
        Ok(())
    }

    /// Stops tracking a VM the check removed some other way.
    pub fn forget_vm(&mut self, vm: &str) {
        self.made.vms.retain(|c| c != vm);
        self.made.attachments.retain(|(v, _)| v != vm);
    }

    // ---- Disks ----

    pub fn create_disk(&mut self, size_mb: u64, vm: Option<&str>) -> Result<String, Stop> {
        let cpi = self.cpi.clone();
        let props = self.env.disk_cloud_properties();
        let cid = self.ok(&cpi, "create_disk", vec![json!(size_mb), props, json!(vm)])?;
        let cid = as_cid("create_disk", &cid)?;
        self.made.disks.push(cid.clone());
        Ok(cid)
    }

    /// `attach_disk`; answers the result (the v2 hint, null under v1).
    pub fn attach(&mut self, cpi: &Cpi, vm: &str, disk: &str) -> Result<Value, Stop> {
        let hint = self.ok(cpi, "attach_disk", vec![json!(vm), json!(disk)])?;
        self.made.attachments.push((vm.to_owned(), disk.to_owned()));
        Ok(hint)
    }

    pub fn detach(&mut self, vm: &str, disk: &str) -> Outcome {
        let cpi = self.cpi.clone();
        self.detach_with(&cpi, vm, disk)
    }

    pub fn detach_with(&mut self, cpi: &Cpi, vm: &str, disk: &str) -> Outcome {
        self.ok(cpi, "detach_disk", vec![json!(vm), json!(disk)])?;
        self.made
            .attachments
            .retain(|(v, d)| !(v == vm && d == disk));
        Ok(())
    }

    pub fn delete_disk(&mut self, disk: &str) -> Outcome {
        let cpi = self.cpi.clone();
        self.ok(&cpi, "delete_disk", vec![json!(disk)])?;
        self.made.disks.retain(|c| c != disk);
        Ok(())
    }

    // ---- For callers that make the calls themselves (bench) ----

    /// Stemcell arguments for this cloud: heavy where it imports, else light.
    pub fn stemcell_args_for_bench(&mut self) -> Result<(PathBuf, Value), String> {
        let api = self.cpi.stemcell_api_version;
        let (image, props) = match (
            self.env.heavy_stemcell_properties(),
            self.env.light_stemcell_properties(),
        ) {
            (Some(p), _) => (Image::Heavy(self.env.heavy_stemcell_image()), p),
            (None, Some(p)) => (Image::Light, p),
            (None, None) => return Err("the environment has no stemcell properties".into()),
        };
        self.stemcell_args(image, api, props)
            .map_err(|e| format!("{e:?}"))
    }

    pub fn track_stemcell(&mut self, cid: &Value) {
        self.made.stemcells.extend(cid.as_str().map(str::to_owned));
    }

    pub fn track_vm(&mut self, cid: &Value) {
        self.made.vms.extend(cid.as_str().map(str::to_owned));
    }

    pub fn track_disk(&mut self, cid: &Value) {
        self.made.disks.extend(cid.as_str().map(str::to_owned));
    }

    /// Forgets everything made: it was all deleted by the caller.
    pub fn forget_made(&mut self) {
        self.made = Made::default();
    }

    pub fn track_snapshot(&mut self, cid: &str) {
        self.made.snapshots.push(cid.to_owned());
    }

    pub fn forget_snapshot(&mut self, cid: &str) {
        self.made.snapshots.retain(|c| c != cid);
    }

    /// Removes what the current check made, through the CPI, ignoring
    /// errors: a CPI that cannot clean up shows in the inventory check.
    pub fn cleanup(&mut self) {
        self.env.clear_faults();
        let made = std::mem::take(&mut self.made);
        let cpi = self.cpi.clone();
        let for_vm = |vm: &str| match made.vm_stemcell_api.get(vm) {
            Some(&v) => cpi.with_versions(cpi.api_version, v),
            None => cpi.clone(),
        };
        let call = |m: &str, args: Vec<Value>| {
            let _ = cpi.call(m, args);
        };
        for s in made.snapshots.iter().rev() {
            call("delete_snapshot", vec![json!(s)]);
        }
        for (vm, disk) in made.attachments.iter().rev() {
            let _ = for_vm(vm).call("detach_disk", vec![json!(vm), json!(disk)]);
        }
        for vm in made.vms.iter().rev() {
            let _ = for_vm(vm).call("delete_vm", vec![json!(vm)]);
        }
        for d in made.disks.iter().rev() {
            call("delete_disk", vec![json!(d)]);
        }
        for s in made.stemcells.iter().rev() {
            call("delete_stemcell", vec![json!(s)]);
        }
    }
}

/// A cid answer: a non-empty string.
pub fn as_cid(method: &str, v: &Value) -> Result<String, Stop> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => fail!("{method}: expected a non-empty cid string, got {v}"),
    }
}
