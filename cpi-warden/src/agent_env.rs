//! Files in a container, as the Go warden CPI moves them (stream-in of a
//! one-entry tar, then `sync` and `[ -f ]`; reads by `cp` to /tmp and
//! stream-out), and the VM's agent settings kept in one of them or in the
//! registry.

use crate::cloud::Warden;
use crate::garden::ProcessSpec;
use agent::{Delivery, Settings};
use cpi::wait::{wait_for, Backoff};
use cpi::{Error, Result, VmCid};
use std::io::Read;
use std::time::Duration;

pub const SETTINGS_FILE: &str = "/var/vcap/bosh/warden-cpi-agent-env.json";
pub const USER_DATA_FILE: &str = "/var/vcap/bosh/warden-cpi-user-data.json";
pub const METADATA_FILE: &str = "/var/vcap/bosh/warden-cpi-metadata.json";

impl Warden {
    /// Runs a script as root; a non-zero exit is an error carrying its output.
    pub async fn script(&self, vm: &VmCid, script: &str) -> Result<()> {
        let r = self
            .garden
            .run(vm.as_str(), &ProcessSpec::script(script))
            .await?;
        if r.exit_status != 0 {
            return Err(Error::cloud(format!(
                "script in container {vm} exited {}: stdout '{}' stderr '{}'",
                r.exit_status,
                String::from_utf8_lossy(&r.stdout).trim(),
                String::from_utf8_lossy(&r.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Writes `contents` at `path` in the container and checks it landed.
    pub async fn upload(&self, vm: &VmCid, path: &str, contents: &[u8]) -> Result<()> {
        let (dir, name) = path
            .rsplit_once('/')
            .ok_or_else(|| Error::cpi(format!("'{path}' is not absolute")))?;
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(contents.len() as u64);
        h.set_mode(0o640);
        h.set_cksum();
        b.append_data(&mut h, name, contents)
            .map_err(|e| Error::cpi(format!("building tar: {e}")))?;
        let tar = b
            .into_inner()
            .map_err(|e| Error::cpi(format!("building tar: {e}")))?;
        self.garden
            .stream_in(vm.as_str(), &format!("{dir}/"), &tar)
            .await?;
        // As the Go CPI does: sync, then check the file is visible, a few
        // times over a short while (overlay filesystems can lag).
        let check = ProcessSpec::script(&format!("[ -f '{path}' ]"));
        let visible = Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
            Duration::from_secs(2),
        )
        .attempts(10);
        wait_for(
            format!("{path} to appear in container {vm}"),
            visible,
            || async {
                let sync = self
                    .garden
                    .run(vm.as_str(), &ProcessSpec::script("sync"))
                    .await?;
                if sync.exit_status != 0 {
                    tracing::debug!("sync in {vm} exited {}", sync.exit_status);
                }
                Ok((self.garden.run(vm.as_str(), &check).await?.exit_status == 0).then_some(()))
            },
        )
        .await
    }

    /// Reads a file from the container.
    pub async fn download(&self, vm: &VmCid, path: &str) -> Result<Vec<u8>> {
        let name = path.rsplit('/').next().unwrap_or("file");
        let tmp = format!("/tmp/{name}-{:016x}", rand::random::<u64>());
        self.script(vm, &format!("cp {path} {tmp} && chown vcap:vcap {tmp}"))
            .await?;
        let tar = self.garden.stream_out(vm.as_str(), &tmp).await?;
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = archive
            .entries()
            .map_err(|e| Error::cloud(format!("reading {path}: {e}")))?;
        let mut entry = entries
            .next()
            .ok_or_else(|| Error::cloud(format!("reading {path}: empty tar")))?
            .map_err(|e| Error::cloud(format!("reading {path}: {e}")))?;
        let mut out = Vec::new();
        entry
            .read_to_end(&mut out)
            .map_err(|e| Error::cloud(format!("reading {path}: {e}")))?;
        Ok(out)
    }

    /// Puts the settings where this VM's agent reads them.
    pub async fn store_settings(
        &self,
        vm: &VmCid,
        settings: &Settings,
        delivery: Delivery,
    ) -> Result<()> {
        match delivery {
            Delivery::UserData => {
                let body = serde_json::to_vec(settings).map_err(|e| Error::cpi(e.to_string()))?;
                self.upload(vm, SETTINGS_FILE, &body).await
            }
            Delivery::Registry => self.registry()?.put(vm, settings).await,
        }
    }

    /// The settings the VM's agent has now.
    pub async fn load_settings(&self, vm: &VmCid, delivery: Delivery) -> Result<Settings> {
        match delivery {
            Delivery::UserData => {
                let raw = self.download(vm, SETTINGS_FILE).await?;
                serde_json::from_slice(&raw)
                    .map_err(|e| Error::cloud(format!("settings of {vm} in {SETTINGS_FILE}: {e}")))
            }
            Delivery::Registry => self
                .registry()?
                .get(vm)
                .await?
                .ok_or_else(|| Error::cloud(format!("the registry has no settings for {vm}"))),
        }
    }

    /// Where a VM's settings live: the registry only when the config says
    /// so and the caller's versions need it (stemcell API v1 or CPI API v1);
    /// otherwise the file in the container.
    pub fn delivery(&self) -> Delivery {
        match self.config.agent_env_service() {
            Ok(crate::config::AgentEnvService::Registry) => Delivery::choose(&self.ctx),
            _ => Delivery::UserData,
        }
    }

    /// The delivery recorded on an existing VM (its container property).
    pub async fn delivery_of(&self, vm: &VmCid) -> Result<Delivery> {
        let info = self.garden.info(vm.as_str()).await?;
        let registry = info
            .properties
            .get(crate::vm::DELIVERY_PROPERTY)
            .is_some_and(|p| p == "registry");
        Ok(if registry {
            Delivery::Registry
        } else {
            Delivery::UserData
        })
    }

    fn registry(&self) -> Result<agent::RegistryClient> {
        let reg = self.config.actions.registry.as_ref().ok_or_else(|| {
            Error::cpi("Actions.Registry: missing, and this VM's settings live in the registry")
        })?;
        agent::RegistryClient::new(reg, "Actions.Registry")
    }

    pub async fn forget_settings(&self, vm: &VmCid) -> Result<()> {
        if self.config.agent_env_service()? == crate::config::AgentEnvService::Registry {
            self.registry()?.delete(vm).await?;
        }
        Ok(())
    }
}
