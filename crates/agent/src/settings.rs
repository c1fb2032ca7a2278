//! The agent settings document, built in one place for every cloud.

use cpi::{CreateVm, DiskCid, Networks, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The agent block of a CPI config (`agent` in the Ruby jobs,
/// `Actions.Agent` in warden): what every VM's agent is told.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct AgentOptions {
    /// `https://mbus:PASSWORD@0.0.0.0:6868` or `nats://…`.
    #[serde(default, alias = "Mbus")]
    pub mbus: Option<Secret>,
    #[serde(default, alias = "NTP", deserialize_with = "null_as_default")]
    pub ntp: Vec<String>,
    /// `{provider|type, options}`; options may hold credentials.
    #[serde(default, alias = "Blobstore")]
    pub blobstore: Option<Value>,
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Where the agent finds its disks.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Disks {
    /// The root device (`/dev/sda`, `/dev/xvda`).
    #[serde(default)]
    pub system: String,
    /// The ephemeral disk: a device path, or an object; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<Value>,
    /// Persistent disks by cid: a path string or a hint object.
    #[serde(default)]
    pub persistent: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_ephemeral: Option<Value>,
}

/// The settings document the agent reads at boot.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Settings {
    pub agent_id: String,
    pub vm: VmName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mbus: Option<String>,
    #[serde(default)]
    pub ntp: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobstore: Option<Value>,
    pub networks: Networks,
    pub disks: Disks,
    pub env: Map<String, Value>,
    /// Keys a cloud adds (`trusted_certs`, `dns`…), kept as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct VmName {
    pub name: String,
}

impl Settings {
    /// The settings for a new VM: the agent block from the config, the
    /// director's `create_vm` arguments, and where the cloud puts the
    /// system and ephemeral disks.
    pub fn new(agent: &AgentOptions, args: &CreateVm, vm_name: &str, disks: Disks) -> Settings {
        Settings {
            agent_id: args.agent_id.to_string(),
            vm: VmName {
                name: vm_name.to_owned(),
            },
            mbus: agent.mbus.as_ref().map(|s| s.expose().to_owned()),
            ntp: agent.ntp.clone(),
            blobstore: agent.blobstore.clone(),
            networks: args.networks.clone(),
            disks,
            env: args.env.clone(),
            extra: Map::new(),
        }
    }

    /// Records an attached persistent disk and the hint the agent resolves.
    pub fn attach_persistent(&mut self, disk: &DiskCid, hint: Value) {
        self.disks.persistent.insert(disk.to_string(), hint);
    }

    /// Forgets a persistent disk; true when it was there.
    pub fn detach_persistent(&mut self, disk: &DiskCid) -> bool {
        self.disks.persistent.remove(disk.as_str()).is_some()
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("settings serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpi::{AgentId, Network, StemcellCid};
    use serde_json::json;

    pub(crate) fn create_vm() -> CreateVm {
        let mut networks = Networks::new();
        networks.insert(
            "default".into(),
            serde_json::from_value::<Network>(json!({"type": "manual", "ip": "10.0.0.10", "netmask": "255.255.255.0",
                "gateway": "10.0.0.1", "dns": ["10.0.0.2"], "default": ["dns", "gateway"], "cloud_properties": {}}))
            .unwrap(),
        );
        CreateVm {
            agent_id: AgentId::new("agent-1"),
            stemcell_cid: StemcellCid::new("sc-1"),
            cloud_properties: Map::new(),
            networks,
            disk_cids: vec![],
            env: json!({"bosh": {"password": "pw-hash"}})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[test]
    fn builds_the_whole_document() {
        let agent: AgentOptions = serde_json::from_value(json!({
            "mbus": "https://mbus:mbus-pw@0.0.0.0:6868", "ntp": ["0.pool.ntp.org"],
            "blobstore": {"provider": "dav", "options": {"endpoint": "http://b", "user": "u", "password": "p"}}
        }))
        .unwrap();
        let mut s = Settings::new(
            &agent,
            &create_vm(),
            "vm-1",
            Disks {
                system: "/dev/sda".into(),
                ephemeral: Some(json!("/dev/sdb")),
                ..Disks::default()
            },
        );
        s.attach_persistent(&DiskCid::new("d-1"), json!({"path": "/dev/sdc"}));
        let v = s.to_json();
        assert_eq!(v["agent_id"], "agent-1");
        assert_eq!(v["vm"]["name"], "vm-1");
        assert_eq!(v["mbus"], "https://mbus:mbus-pw@0.0.0.0:6868");
        assert_eq!(v["ntp"], json!(["0.pool.ntp.org"]));
        assert_eq!(v["blobstore"]["provider"], "dav");
        assert_eq!(v["networks"]["default"]["ip"], "10.0.0.10");
        assert_eq!(
            v["disks"],
            json!({"system": "/dev/sda", "ephemeral": "/dev/sdb", "persistent": {"d-1": {"path": "/dev/sdc"}}})
        );
        assert_eq!(v["env"]["bosh"]["password"], "pw-hash");
        let back: Settings = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert!(s.clone().detach_persistent(&DiskCid::new("d-1")));
    }

    #[test]
    fn reads_warden_style_agent_block() {
        let agent: AgentOptions = serde_json::from_value(json!({
            "Mbus": "nats://n:p@1.2.3.4:4222", "NTP": null, "Blobstore": {"type": "local", "options": {}}
        }))
        .unwrap();
        assert_eq!(agent.mbus.unwrap().expose(), "nats://n:p@1.2.3.4:4222");
        assert!(agent.ntp.is_empty());
    }
}
