//! The parts of the OpenStack API bodies this CPI reads, typed.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

// ---- Nova ----

#[derive(Debug, Deserialize)]
pub struct ServerBody {
    pub server: Server,
}
#[derive(Debug, Deserialize)]
pub struct ServersBody {
    pub servers: Vec<Server>,
}

#[derive(Debug, Deserialize)]
pub struct Server {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, rename = "OS-EXT-AZ:availability_zone")]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub flavor: Option<FlavorRef>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub fault: Option<Fault>,
}

#[derive(Debug, Deserialize)]
pub struct FlavorRef {
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub message: String,
}

impl Server {
    /// Gone for the director: deleted, soft-deleted or terminated.
    pub fn is_gone(&self) -> bool {
        matches!(
            self.status.to_ascii_uppercase().as_str(),
            "DELETED" | "SOFT_DELETED" | "TERMINATED"
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct FlavorsBody {
    pub flavors: Vec<Flavor>,
}
#[derive(Debug, Deserialize)]
pub struct FlavorBody {
    pub flavor: Flavor,
}

#[derive(Debug, Deserialize)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub vcpus: u32,
    /// MiB
    #[serde(default)]
    pub ram: u64,
    #[serde(default)]
    pub disk: u64,
    #[serde(default, rename = "OS-FLV-EXT-DATA:ephemeral")]
    pub ephemeral: u64,
    /// An integer, or "" when there is none.
    #[serde(default)]
    pub swap: Value,
}

impl Flavor {
    pub fn has_swap(&self) -> bool {
        self.swap.as_u64().is_some_and(|s| s > 0)
    }
}

#[derive(Debug, Deserialize)]
pub struct AttachmentsBody {
    #[serde(rename = "volumeAttachments")]
    pub attachments: Vec<Attachment>,
}
#[derive(Debug, Deserialize)]
pub struct AttachmentBody {
    #[serde(rename = "volumeAttachment")]
    pub _attachment: Attachment,
}
#[derive(Debug, Deserialize)]
pub struct Attachment {
    #[serde(rename = "volumeId")]
    pub volume_id: String,
    #[serde(default)]
    pub device: Option<String>,
}

// ---- Cinder ----

#[derive(Debug, Deserialize)]
pub struct VolumeBody {
    pub volume: Volume,
}
#[derive(Debug, Deserialize)]
pub struct VolumesBody {
    pub volumes: Vec<Volume>,
}
#[derive(Debug, Deserialize)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub attachments: Vec<VolumeAttachment>,
}
#[derive(Debug, Deserialize)]
pub struct VolumeAttachment {
    #[serde(default)]
    pub server_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SnapshotBody {
    pub snapshot: Snapshot,
}
#[derive(Debug, Deserialize)]
pub struct SnapshotsBody {
    pub snapshots: Vec<Snapshot>,
}
#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub id: String,
    #[serde(default)]
    pub status: String,
}

// ---- Glance ----

#[derive(Debug, Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub status: String,
}

// ---- Neutron ----

#[derive(Debug, Deserialize)]
pub struct PortBody {
    pub port: Port,
}
#[derive(Debug, Deserialize)]
pub struct PortsBody {
    pub ports: Vec<Port>,
}
#[derive(Debug, Deserialize)]
pub struct Port {
    pub id: String,
    #[serde(default)]
    pub mac_address: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
}
#[derive(Debug, Deserialize)]
pub struct FixedIp {
    #[serde(default)]
    pub subnet_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SecurityGroupsBody {
    pub security_groups: Vec<SecurityGroup>,
}
#[derive(Debug, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct FloatingIpsBody {
    pub floatingips: Vec<FloatingIp>,
}
#[derive(Debug, Deserialize)]
pub struct FloatingIp {
    pub id: String,
}
