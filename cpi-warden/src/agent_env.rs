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
    /// Writes `contents` at `path` in the container and checks it landed.
    pub async fn upload(&self, vm: &VmCid, path: &str, contents: &[u8]) -> Result<()> {
        let (dir, name) = path
            .rsplit_once('/')
            .ok_or_else(|| Error::cpi(format!("'{path}' is not absolute")))?;
        self.upload_files(vm, dir, &[(name, contents)]).await
    }

    /// Writes files into one directory of the container with one stream-in
    /// (a tar of them all), then checks they landed: as the Go CPI does,
    /// `sync` and `[ -f ]`, a few times over a short while (overlay
    /// filesystems can lag), but in one script whose exit status is all the
    /// answer (no output streams attached).
    pub async fn upload_files(&self, vm: &VmCid, dir: &str, files: &[(&str, &[u8])]) -> Result<()> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, contents) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(contents.len() as u64);
            h.set_mode(0o640);
            h.set_cksum();
            b.append_data(&mut h, name, *contents)
                .map_err(|e| Error::cpi(format!("building tar: {e}")))?;
        }
        let tar = b
            .into_inner()
            .map_err(|e| Error::cpi(format!("building tar: {e}")))?;
        let dir = dir.trim_end_matches('/');
        self.garden
            .stream_in(vm.as_str(), &format!("{dir}/"), &tar)
            .await?;
        let tests: Vec<String> = files
            .iter()
            .map(|(name, _)| format!("[ -f '{dir}/{name}' ]"))
            .collect();
        let check = ProcessSpec::script(&format!("sync; {}", tests.join(" && ")));
        let visible = Backoff::new(
            Duration::from_millis(50),
            Duration::from_millis(200),
            Duration::from_secs(2),
        )
        .attempts(10);
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        wait_for(
            format!("{} to appear in {dir} in container {vm}", names.join(", ")),
            visible,
            || async {
                Ok((self.garden.run_status(vm.as_str(), &check).await? == 0).then_some(()))
            },
        )
        .await
    }

    /// Reads a file from the container: a stream-out of it as root (the Go
    /// CPI first copies it to /tmp with a script, three more connections
    /// and a file left behind each time).
    pub async fn download(&self, vm: &VmCid, path: &str) -> Result<Vec<u8>> {
        let tar = self.garden.stream_out(vm.as_str(), path).await?;
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

    /// The settings the VM's agent has now, and where they live. The file in
    /// the container is read first (one stream-out, which also finds a
    /// missing container: VMNotFound); only when it is not there and the
    /// config has a registry is the container's delivery property asked for.
    pub async fn current_settings(&self, vm: &VmCid) -> Result<(Settings, Delivery)> {
        let file = self.download(vm, SETTINGS_FILE).await;
        let registry_configured =
            self.config.agent_env_service()? == crate::config::AgentEnvService::Registry;
        match file {
            Ok(raw) => {
                let s = serde_json::from_slice(&raw).map_err(|e| {
                    Error::cloud(format!("settings of {vm} in {SETTINGS_FILE}: {e}"))
                })?;
                Ok((s, Delivery::UserData))
            }
            Err(e) if e.kind() == cpi::ErrorKind::VmNotFound || !registry_configured => Err(e),
            Err(e) => {
                if self.delivery_of(vm).await? != Delivery::Registry {
                    return Err(e);
                }
                let s = self.registry()?.get(vm).await?.ok_or_else(|| {
                    Error::cloud(format!("the registry has no settings for {vm}"))
                })?;
                Ok((s, Delivery::Registry))
            }
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
    async fn delivery_of(&self, vm: &VmCid) -> Result<Delivery> {
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
