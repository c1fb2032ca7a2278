//! VMs: a directory with a record, a port, and the agent's user data; the
//! settings go to the registry for stemcell API v1.

use super::stemcells::image_of;
use super::{io, Reference};
use crate::config::Break;
use crate::store::VmRecord;
use agent::{Delivery, Disks, RegistryClient, Settings};
use cpi::{
    CloudProperties, CreateVm, CreatedVm, Error, Metadata, NetworkType, Result, VmCid, VmResources,
};
use serde::Deserialize;
use serde_json::{json, Value};

const INSTANCE_TYPES: &[&str] = &["small", "medium", "large"];

#[derive(Deserialize)]
struct VmProperties {
    instance_type: String,
}

impl Reference {
    pub(super) fn registry(&self) -> Result<RegistryClient> {
        let cfg =
            self.config.registry.as_ref().ok_or_else(|| {
                Error::cpi("registry: missing: stemcell API v1 VMs need a registry")
            })?;
        RegistryClient::new(cfg, "registry")
    }

    /// The IP for the VM: the manual network's, or a free dynamic one.
    fn pick_ip(&self, args: &CreateVm) -> Result<String> {
        let used: Vec<String> = self
            .store
            .list("vms")
            .iter()
            .filter_map(|v| self.store.vm(v))
            .map(|r| r.ip)
            .collect();
        let manual = args
            .networks
            .values()
            .find(|n| n.kind == NetworkType::Manual)
            .and_then(|n| n.ip.clone());
        match manual {
            Some(ip) if used.contains(&ip) => Err(Error::vm_creation_failed(
                format!("create_vm: IP {ip} is already in use"),
                false,
            )),
            Some(ip) => Ok(ip),
            None => (2..255)
                .map(|n| format!("10.0.1.{n}"))
                .find(|ip| !used.contains(ip))
                .ok_or_else(|| Error::vm_creation_failed("create_vm: no free dynamic IP", true)),
        }
    }

    /// Everything after the VM exists; on error the caller removes the VM.
    async fn finish_vm(&self, cid: &str, args: &CreateVm, delivery: Delivery) -> Result<()> {
        if self.take_create_vm_fault() {
            return Err(Error::cloud(
                "create_vm: the cloud failed to attach the VM's network port",
            ));
        }
        let mut settings = Settings::new(
            &self.config.agent,
            args,
            cid,
            Disks {
                system: "/dev/sda".into(),
                ephemeral: Some(json!("/dev/sdb")),
                ..Disks::default()
            },
        );
        if self.broken(Break::SettingsDropNtp) {
            settings.ntp.clear();
        }
        if delivery == Delivery::Registry {
            self.registry()?.put(&VmCid::new(cid), &settings).await?;
        }
        let user_data = agent::user_data(&settings, delivery, self.config.registry.as_ref());
        io(
            "writing user data",
            crate::store::write_json(&self.store.vm_dir(cid).join("user_data.json"), &user_data),
        )
    }

    fn remove_vm_files(&self, cid: &str, record: &VmRecord) {
        let _ = std::fs::remove_file(self.store.port_file(&record.port));
        let _ = std::fs::remove_dir_all(self.store.vm_dir(cid));
    }
}

impl cpi::Vms for Reference {
    async fn create_vm(&self, args: CreateVm) -> Result<CreatedVm> {
        let props: VmProperties = cpi::typed("create_vm: cloud_properties", &args.cloud_properties)
            .map_err(|e| e.with_kind(cpi::ErrorKind::VmCreationFailed))?;
        if !INSTANCE_TYPES.contains(&props.instance_type.as_str()) {
            return Err(Error::vm_creation_failed(
                format!(
                    "create_vm: cloud_properties.instance_type: unknown instance type '{}' (known: {})",
                    props.instance_type,
                    INSTANCE_TYPES.join(", ")
                ),
                false,
            ));
        }
        if !self
            .store
            .stemcell_dir(image_of(args.stemcell_cid.as_str()))
            .is_dir()
        {
            return Err(Error::vm_creation_failed(
                format!("create_vm: stemcell '{}' not found", args.stemcell_cid),
                false,
            ));
        }
        let ip = self.pick_ip(&args)?;
        if self.broken(Break::SecretLogged) {
            // Broken on purpose: straight to stderr, past the scrubber.
            eprintln!(
                "create_vm: calling the cloud with api key {}",
                self.config.api_key.expose()
            );
        }
        self.request("run_instance").await?;
        let cid = format!("vm-{}", uuid::Uuid::new_v4().simple());
        let delivery = Delivery::choose(&self.ctx);
        let record = VmRecord {
            agent_id: args.agent_id.to_string(),
            stemcell: args.stemcell_cid.to_string(),
            ip,
            port: format!("port-{}", uuid::Uuid::new_v4().simple()),
            delivery: if delivery == Delivery::Registry {
                "registry"
            } else {
                "user_data"
            }
            .into(),
            ..VmRecord::default()
        };
        io(
            "creating the port",
            crate::store::write_json(&self.store.port_file(&record.port), &json!({"vm": cid})),
        )?;
        io("creating the VM", self.store.put_vm(&cid, &record))?;
        if let Err(e) = self.finish_vm(&cid, &args, delivery).await {
            if !self.broken(Break::CreateVmLeaksOnFailure) {
                self.remove_vm_files(&cid, &record);
                if delivery == Delivery::Registry {
                    if let Ok(r) = self.registry() {
                        let _ = r.delete(&VmCid::new(&cid)).await;
                    }
                }
            }
            let retry = e.ok_to_retry();
            return Err(e.with_kind(cpi::ErrorKind::VmCreationFailed).retry(retry));
        }
        tracing::info!("created VM {cid} for agent {}", args.agent_id);
        Ok(CreatedVm {
            cid: VmCid::new(cid),
            networks: args.networks,
        })
    }

    async fn delete_vm(&self, cid: VmCid) -> Result<()> {
        self.request("terminate_instance").await?;
        let Some(record) = self.store.vm(cid.as_str()) else {
            if self.broken(Break::DeleteVmMissingFails) {
                return Err(Error::cloud(format!(
                    "delete_vm: VM '{cid}' does not exist"
                )));
            }
            return Ok(());
        };
        if !self.broken(Break::DeleteVmKeepsAttachments) {
            for disk in self.store.disks_of(cid.as_str()) {
                if let Some(mut d) = self.store.disk(&disk) {
                    d.attached_to = None;
                    io("detaching a disk", self.store.put_disk(&disk, &d))?;
                }
            }
        }
        if record.delivery == "registry" {
            self.registry()?.delete(&cid).await?;
        }
        if self.broken(Break::DeleteVmLeaksPort) {
            let _ = std::fs::remove_dir_all(self.store.vm_dir(cid.as_str()));
        } else {
            self.remove_vm_files(cid.as_str(), &record);
        }
        Ok(())
    }

    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        self.request("describe_instance").await?;
        let exists = self.store.vm(cid.as_str()).is_some();
        if !exists && self.broken(Break::HasVmErrorsForMissing) {
            return Err(Error::vm_not_found(&cid));
        }
        Ok(exists)
    }

    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        self.request("reboot_instance").await?;
        let mut record = self
            .store
            .vm(cid.as_str())
            .ok_or_else(|| Error::vm_not_found(&cid))?;
        record.reboots += 1;
        io(
            "recording the reboot",
            self.store.put_vm(cid.as_str(), &record),
        )
    }

    async fn set_vm_metadata(&self, cid: VmCid, metadata: Metadata) -> Result<()> {
        self.request("tag_instance").await?;
        let mut record = self
            .store
            .vm(cid.as_str())
            .ok_or_else(|| Error::vm_not_found(&cid))?;
        record.metadata.extend(metadata.0);
        io("saving metadata", self.store.put_vm(cid.as_str(), &record))
    }

    async fn calculate_vm_cloud_properties(&self, r: VmResources) -> Result<CloudProperties> {
        let instance_type = match (r.cpu, r.ram) {
            (0..=1, 0..=2048) => "small",
            (0..=2, 0..=8192) => "medium",
            _ => "large",
        };
        let v = json!({"instance_type": instance_type, "ephemeral_disk": {"size": r.ephemeral_disk_size}});
        Ok(match v {
            Value::Object(m) => m,
            _ => CloudProperties::new(),
        })
    }
}
