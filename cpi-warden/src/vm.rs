//! VMs are Garden containers: made from the stemcell's directory, with the
//! ephemeral and persistent bind mounts, the requested IP, the agent
//! settings written into them and the agent started. A create that fails
//! once the container exists destroys it (the Go CPI only stops it).

use crate::agent_env::{METADATA_FILE, SETTINGS_FILE, USER_DATA_FILE};
use crate::cloud::Warden;
use crate::cloud_props::{self, VmProps};
use crate::garden::{BindMount, ContainerSpec, ProcessSpec};
use crate::host;
use agent::{Delivery, Disks, Settings};
use cpi::{CreateVm, CreatedVm, Error, ErrorKind, Metadata, NetworkType, Networks, Result, VmCid};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Container properties the CPI keeps for itself (metadata keys are stored
/// as they come).
pub const AGENT_ID_PROPERTY: &str = "warden-cpi.agent_id";
pub const DELIVERY_PROPERTY: &str = "warden-cpi.settings";
/// The director's VM metadata, a JSON object of strings.
pub const METADATA_PROPERTY: &str = "warden-cpi.metadata";

/// With `start_containers_with_systemd`, all the CPI runs (not waited for).
const PREPARE_SYSTEMD: &str = "umount /etc/hosts";

/// The agent's start, as the Go warden CPI runs it (not waited for).
const START_AGENT: &str = "umount /etc/resolv.conf\numount /etc/hosts\numount /etc/hostname\nrm -rf /var/vcap/data/sys\nmkdir -p /var/vcap/data/sys\nsed -i 's/chronyc/# chronyc/g' /var/vcap/bosh/bin/sync-time\nexec env -i /usr/sbin/runsvdir-start";

impl Warden {
    pub fn host_ephemeral_dir(&self, vm: &VmCid) -> PathBuf {
        self.config
            .actions
            .host_ephemeral_bind_mounts_dir
            .join(vm.as_str())
    }
    pub fn host_persistent_dir(&self, vm: &VmCid) -> PathBuf {
        self.config
            .actions
            .host_persistent_bind_mounts_dir
            .join(vm.as_str())
    }

    /// True when Garden lists the container.
    pub async fn vm_exists(&self, vm: &VmCid) -> Result<bool> {
        Ok(self
            .garden
            .list(&BTreeMap::new())
            .await?
            .iter()
            .any(|h| h == vm.as_str()))
    }

    pub async fn require_vm(&self, vm: &VmCid) -> Result<()> {
        if self.vm_exists(vm).await? {
            Ok(())
        } else {
            Err(Error::vm_not_found(vm))
        }
    }

    fn remove_host_dirs(&self, vm: &VmCid) -> Result<()> {
        host::remove_dir(&self.host_persistent_dir(vm))?;
        host::remove_dir(&self.host_ephemeral_dir(vm))?;
        Ok(())
    }

    /// Everything after the container exists: ports, the settings and
    /// metadata files (one stream-in, one check), the agent.
    async fn finish_vm(
        &self,
        cid: &VmCid,
        args: &CreateVm,
        networks: &Networks,
        props: &VmProps,
        delivery: Delivery,
    ) -> Result<()> {
        for (h, c) in &props.ports {
            self.garden
                .net_in(cid.as_str(), u32::from(*h), u32::from(*c))
                .await
                .map_err(|e| e.context(format!("forwarding host port {h} to {c}")))?;
        }
        let mut with_networks = args.clone();
        with_networks.networks = networks.clone();
        let settings = Settings::new(
            &self.config.agent_options(),
            &with_networks,
            cid.as_str(),
            Disks {
                system: "/dev/sda".into(),
                ..Disks::default()
            },
        );
        let metadata = json!({"instance-id": cid.as_str()}).to_string();
        let mut files: Vec<(&str, Vec<u8>)> =
            vec![(file_name(METADATA_FILE), metadata.into_bytes())];
        match delivery {
            Delivery::UserData => {
                let body = serde_json::to_vec(&settings).map_err(|e| Error::cpi(e.to_string()))?;
                files.push((file_name(SETTINGS_FILE), body));
            }
            Delivery::Registry => {
                self.store_settings(cid, &settings, delivery)
                    .await
                    .map_err(|e| e.context("writing the agent settings"))?;
                let pointer = agent::user_data(
                    &settings,
                    Delivery::Registry,
                    self.config.actions.registry.as_ref(),
                );
                files.push((file_name(USER_DATA_FILE), pointer.to_string().into_bytes()));
            }
        }
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, &b[..])).collect();
        self.upload_files(cid, BOSH_DIR, &files)
            .await
            .map_err(|e| e.context("writing the agent settings and metadata"))?;
        if self.config.start_containers_with_systemd {
            // systemd in the container starts the agent; as the Go CPI does,
            // only free /etc/hosts for it (not waited for).
            self.garden
                .spawn(cid.as_str(), &ProcessSpec::script(PREPARE_SYSTEMD))
                .await
                .map_err(|e| e.context("preparing the container for systemd"))?;
        } else {
            self.garden
                .spawn_once(
                    cid.as_str(),
                    AGENT_PROCESS_ID,
                    &ProcessSpec::script(START_AGENT),
                )
                .await
                .map_err(|e| e.context("starting the BOSH agent"))?;
        }
        Ok(())
    }
}

/// The cgroup tree systemd in a container needs, bind-mounted from the host.
const CGROUP_DIR: &str = "/sys/fs/cgroup";

/// Where the agent's files live in the container.
const BOSH_DIR: &str = "/var/vcap/bosh";

/// The Garden process id of the agent's start: a retry after a lost answer
/// finds it running instead of starting a second agent.
const AGENT_PROCESS_ID: &str = "bosh-agent-start";

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The Garden network for the default network: `ip/prefix` for manual, ""
/// (Garden picks) for dynamic.
fn garden_network(networks: &Networks) -> Result<String> {
    let net = networks
        .values()
        .find(|n| {
            n.default
                .as_ref()
                .is_some_and(|d| d.iter().any(|x| x == "gateway"))
        })
        .or_else(|| networks.values().next())
        .ok_or_else(|| {
            Error::vm_creation_failed("create_vm: expected at least one network, got none", false)
        })?;
    if net.kind == NetworkType::Dynamic {
        return Ok(String::new());
    }
    let ip = net.ip.clone().ok_or_else(|| {
        Error::vm_creation_failed("create_vm: networks: a manual network needs an ip", false)
    })?;
    let prefix = match net.netmask.as_deref() {
        Some(mask) => mask_bits(mask).ok_or_else(|| {
            Error::vm_creation_failed(
                format!("create_vm: networks: netmask '{mask}' is not a valid IPv4 mask"),
                false,
            )
        })?,
        None => 32,
    };
    Ok(format!("{ip}/{prefix}"))
}

fn mask_bits(mask: &str) -> Option<u32> {
    let ip: std::net::Ipv4Addr = mask.parse().ok()?;
    let n = u32::from(ip);
    (n.leading_ones() + n.trailing_zeros() == 32).then_some(n.leading_ones())
}

impl cpi::Vms for Warden {
    async fn create_vm(&self, args: CreateVm) -> Result<CreatedVm> {
        let props = cloud_props::vm_props(&args.cloud_properties, "create_vm: cloud_properties")?;
        let stemcell = self.stemcell_dir(&args.stemcell_cid)?;
        if !stemcell.exists() {
            return Err(Error::vm_creation_failed(
                format!(
                    "create_vm: stemcell '{}' not found in {}",
                    args.stemcell_cid,
                    self.config.actions.stemcells_dir.display()
                ),
                false,
            ));
        }
        let network = garden_network(&args.networks)?;
        let mut networks = args.networks.clone();
        for n in networks.values_mut() {
            // The container's network is set up by Garden: the agent must not touch it.
            n.extra.insert("preconfigured".into(), Value::Bool(true));
        }
        let cid = VmCid::new(uuid::Uuid::new_v4().to_string());
        let delivery = self.delivery();
        let failed = |e: Error, retry: bool| {
            Error::vm_creation_failed(format!("create_vm {cid}: {}", e.message()), retry)
        };

        let (eph, pers) = (
            self.host_ephemeral_dir(&cid),
            self.host_persistent_dir(&cid),
        );
        let dirs = std::fs::create_dir_all(&eph)
            .map_err(host::fs_err("making ephemeral bind mount dir", &eph))
            .and_then(|_| host::make_shared_dir(&pers));
        if let Err(e) = dirs {
            let _ = self.remove_host_dirs(&cid);
            return Err(failed(e.into(), false));
        }
        let a = &self.config.actions;
        let mut properties = BTreeMap::new();
        properties.insert(AGENT_ID_PROPERTY.to_owned(), args.agent_id.to_string());
        properties.insert(
            DELIVERY_PROPERTY.to_owned(),
            if delivery == Delivery::Registry {
                "registry"
            } else {
                "file"
            }
            .to_owned(),
        );
        let mut bind_mounts = vec![
            BindMount {
                src_path: eph.to_string_lossy().into(),
                dst_path: a.guest_ephemeral_bind_mount_path.clone(),
                mode: 1,
                origin: 0,
            },
            BindMount {
                src_path: pers.to_string_lossy().into(),
                dst_path: a.guest_persistent_bind_mounts_dir.clone(),
                mode: 1,
                origin: 0,
            },
        ];
        if self.config.start_containers_with_systemd {
            bind_mounts.push(BindMount {
                src_path: CGROUP_DIR.into(),
                dst_path: CGROUP_DIR.into(),
                mode: 1,
                origin: 0,
            });
        }
        let spec = ContainerSpec {
            handle: cid.to_string(),
            rootfs: stemcell.to_string_lossy().into_owned(),
            image: json!({"uri": stemcell.to_string_lossy()}),
            bind_mounts,
            network,
            properties,
            privileged: props.privileged,
        };
        if let Err(e) = self.garden.create(&spec).await {
            let retry = e.ok_to_retry();
            let _ = self.remove_host_dirs(&cid);
            return Err(failed(e.context("creating container"), retry));
        }
        if let Err(e) = self
            .finish_vm(&cid, &args, &networks, &props, delivery)
            .await
        {
            tracing::warn!(
                "create_vm {cid} failed after the container existed, destroying it: {}",
                e.message()
            );
            if let Err(d) = self.garden.destroy(cid.as_str()).await {
                tracing::error!(
                    "destroying container {cid} after a failed create_vm: {}",
                    d.message()
                );
            }
            let _ = self.remove_host_dirs(&cid);
            if delivery == Delivery::Registry {
                let _ = self.forget_settings(&cid).await;
            }
            return Err(failed(e, true));
        }
        tracing::info!("created VM {cid}");
        Ok(CreatedVm { cid, networks })
    }

    async fn delete_vm(&self, cid: VmCid) -> Result<()> {
        match self.garden.destroy(cid.as_str()).await {
            Err(e) if e.kind() == ErrorKind::VmNotFound => {
                tracing::info!("delete_vm: container {cid} already gone")
            }
            other => other.map_err(|e| e.context("delete_vm"))?,
        }
        self.remove_host_dirs(&cid)
            .map_err(|e| e.context("delete_vm: cleaning host bind mounts"))?;
        self.forget_settings(&cid)
            .await
            .map_err(|e| e.context("delete_vm"))
    }

    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        self.vm_exists(&cid).await
    }

    /// A container has nothing to reboot: the VM must exist, and the
    /// agent's supervisor keeps running in it.
    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        self.require_vm(&cid).await
    }

    /// One Garden request: the metadata as one JSON container property
    /// (`warden-cpi.metadata`). A missing container answers VMNotFound.
    /// (The Go CPI stores nothing.)
    async fn set_vm_metadata(&self, cid: VmCid, metadata: Metadata) -> Result<()> {
        let value = serde_json::to_string(&metadata.0).map_err(|e| Error::cpi(e.to_string()))?;
        self.garden
            .set_property(cid.as_str(), METADATA_PROPERTY, &value)
            .await
            .map_err(|e| e.context("set_vm_metadata"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(v: Value) -> Networks {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_default_network_gives_garden_its_address() {
        let n = nets(
            json!({"a": {"type": "manual", "ip": "10.0.1.5", "netmask": "255.255.255.0", "default": ["dns"]},
                            "b": {"type": "manual", "ip": "10.0.0.7", "netmask": "255.255.0.0", "default": ["gateway"]}}),
        );
        assert_eq!(garden_network(&n).unwrap(), "10.0.0.7/16");
        assert_eq!(
            garden_network(&nets(json!({"d": {"type": "dynamic"}}))).unwrap(),
            ""
        );
        let e = garden_network(&nets(
            json!({"m": {"type": "manual", "ip": "10.0.0.7", "netmask": "255.0.255.0"}}),
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::VmCreationFailed);
        assert!(e.message().contains("netmask"), "{}", e.message());
        assert!(garden_network(&Networks::new()).is_err());
    }
}
