//! `cpi.json` as the warden_cpi job renders it, key for key
//! (`Warden.ConnectNetwork`, `Actions.StemcellsDir`, `Actions.Agent.Mbus`…),
//! validated once with errors naming the key.

use agent::{AgentOptions, RegistryConfig};
use cpi::{Error, Result, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// Every key is listed, with its type, default and meaning, in
/// [`crate::reference::CONFIG`]; a test checks the two against each other
/// and against the README.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub warden: WardenConfig,
    pub actions: Actions,
    /// Containers start with /sbin/init (systemd, Noble stemcells): the
    /// host's cgroup tree is bind-mounted in and the CPI does not start the
    /// agent itself. Snake_case at the top level, as the job renders it.
    #[serde(rename = "start_containers_with_systemd", default)]
    pub start_containers_with_systemd: bool,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WardenConfig {
    /// `tcp` or `unix`.
    pub connect_network: String,
    /// `127.0.0.1:7777` or a socket path.
    pub connect_address: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Actions {
    pub stemcells_dir: PathBuf,
    /// Unpack a stemcell's image into a directory (true), or only gunzip it
    /// to a tarball file the Garden image plugin (GrootFS) takes (false).
    #[serde(default = "yes")]
    pub expand_stemcell_tarball: bool,
    pub disks_dir: PathBuf,
    pub host_ephemeral_bind_mounts_dir: PathBuf,
    pub host_persistent_bind_mounts_dir: PathBuf,
    pub guest_ephemeral_bind_mount_path: String,
    pub guest_persistent_bind_mounts_dir: String,
    pub agent: AgentBlock,
    /// `file` (settings in a file in the container) or `registry`.
    #[serde(default = "file")]
    pub agent_env_service: String,
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
}

fn file() -> String {
    "file".into()
}

fn yes() -> bool {
    true
}

/// `Actions.Agent`: `{Mbus, NTP, Blobstore: {Provider, Options}}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct AgentBlock {
    #[serde(rename = "Mbus", default)]
    pub mbus: Option<Secret>,
    #[serde(rename = "NTP", default)]
    pub ntp: Option<Vec<String>>,
    #[serde(rename = "Blobstore", default)]
    pub blobstore: Option<BlobstoreBlock>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct BlobstoreBlock {
    /// The job renders `Provider`; `Type` is read too.
    #[serde(rename = "Provider", alias = "Type", default)]
    pub kind: String,
    #[serde(rename = "Options", default)]
    pub options: Option<Map<String, Value>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentEnvService {
    File,
    Registry,
}

impl Config {
    /// Checks what serde cannot; messages name the key.
    pub fn validate(&self) -> Result<()> {
        match self.warden.connect_network.as_str() {
            "tcp" | "unix" => {}
            other => {
                return Err(Error::cpi(format!(
                    "Warden.ConnectNetwork: '{other}' is neither 'tcp' nor 'unix'"
                )))
            }
        }
        if self.warden.connect_address.trim().is_empty() {
            return Err(Error::cpi("Warden.ConnectAddress: empty"));
        }
        if self
            .actions
            .agent
            .mbus
            .as_ref()
            .is_none_or(|m| m.expose().trim().is_empty())
        {
            return Err(Error::cpi(
                "Actions.Agent.Mbus: missing or empty (the agents' message bus URL)",
            ));
        }
        let a = &self.actions;
        for (key, path) in [
            ("Actions.StemcellsDir", &a.stemcells_dir),
            ("Actions.DisksDir", &a.disks_dir),
            (
                "Actions.HostEphemeralBindMountsDir",
                &a.host_ephemeral_bind_mounts_dir,
            ),
            (
                "Actions.HostPersistentBindMountsDir",
                &a.host_persistent_bind_mounts_dir,
            ),
        ] {
            if !path.is_absolute() {
                return Err(Error::cpi(format!(
                    "{key}: '{}' is not an absolute path",
                    path.display()
                )));
            }
        }
        for (key, path) in [
            (
                "Actions.GuestEphemeralBindMountPath",
                &a.guest_ephemeral_bind_mount_path,
            ),
            (
                "Actions.GuestPersistentBindMountsDir",
                &a.guest_persistent_bind_mounts_dir,
            ),
        ] {
            if !path.starts_with('/') {
                return Err(Error::cpi(format!(
                    "{key}: '{path}' is not an absolute path"
                )));
            }
        }
        if self.agent_env_service()? == AgentEnvService::Registry {
            let reg = a.registry.as_ref().ok_or_else(|| {
                Error::cpi("Actions.Registry: missing, and AgentEnvService is 'registry'")
            })?;
            reg.resolve("Actions.Registry")?;
        }
        if let Some(opts) = a.agent.blobstore.as_ref().and_then(|b| b.options.as_ref()) {
            cpi::secret::register_from_json(&Value::Object(opts.clone()));
        }
        Ok(())
    }

    pub fn agent_env_service(&self) -> Result<AgentEnvService> {
        match self.actions.agent_env_service.as_str() {
            "file" | "" => Ok(AgentEnvService::File),
            "registry" => Ok(AgentEnvService::Registry),
            other => Err(Error::cpi(format!(
                "Actions.AgentEnvService: '{other}' is neither 'file' nor 'registry'"
            ))),
        }
    }

    /// The agent block as every VM's settings carry it.
    pub fn agent_options(&self) -> AgentOptions {
        let a = &self.actions.agent;
        AgentOptions {
            mbus: a.mbus.clone(),
            ntp: a.ntp.clone().unwrap_or_default(),
            blobstore: a.blobstore.as_ref().map(
                |b| json!({"provider": b.kind, "options": b.options.clone().unwrap_or_default()}),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(edit: impl FnOnce(&mut Value)) -> cpi::Result<Config> {
        let mut v = json!({
            "Warden": {"ConnectNetwork": "tcp", "ConnectAddress": "127.0.0.1:7777"},
            "Actions": {"StemcellsDir": "/s", "DisksDir": "/d", "HostEphemeralBindMountsDir": "/e",
                        "HostPersistentBindMountsDir": "/p", "GuestEphemeralBindMountPath": "/var/vcap/data",
                        "GuestPersistentBindMountsDir": "/warden-cpi-dev",
                        "Agent": {"Mbus": "nats://n:cfg-test-pw@1.2.3.4:4222", "NTP": null,
                                  "Blobstore": {"Type": "local", "Options": {"blobstore_path": "/b"}}},
                        "AgentEnvService": "file",
                        "Registry": {"Host": "", "Port": 0, "Username": "", "Password": ""}}
        });
        edit(&mut v);
        let c: Config = cpi::config::parse(v)?.config;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn reads_the_job_rendered_config() {
        let c = config(|_| {}).unwrap();
        let a = c.agent_options();
        assert_eq!(
            a.blobstore.unwrap(),
            json!({"provider": "local", "options": {"blobstore_path": "/b"}})
        );
        assert!(a.ntp.is_empty());
        assert_eq!(c.agent_env_service().unwrap(), AgentEnvService::File);
    }

    #[test]
    fn errors_name_the_key() {
        let e = config(|v| v["Warden"]["ConnectNetwork"] = json!("udp"))
            .err()
            .unwrap();
        assert!(
            e.message().contains("Warden.ConnectNetwork"),
            "{}",
            e.message()
        );
        let e = config(|v| v["Actions"]["DisksDir"] = json!("relative"))
            .err()
            .unwrap();
        assert!(e.message().contains("Actions.DisksDir"), "{}", e.message());
        let e = config(|v| v["Actions"]["AgentEnvService"] = json!("registry"))
            .err()
            .unwrap();
        assert!(e.message().contains("Actions.Registry"), "{}", e.message());
        let e = config(|v| {
            v["Actions"]
                .as_object_mut()
                .unwrap()
                .remove("StemcellsDir")
                .map(|_| ())
                .unwrap()
        })
        .err()
        .unwrap();
        assert!(e.message().contains("StemcellsDir"), "{}", e.message());
    }
}
