//! Garden's request and answer shapes the CPI uses, with the keys on the
//! wire (snake_case specs; Go-cased info, read case-insensitively).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Garden's `BindMount` (snake_case on the wire; mode 1 = RW, origin 0 = host).
#[derive(Clone, Debug, Serialize)]
pub struct BindMount {
    pub src_path: String,
    pub dst_path: String,
    pub mode: u8,
    pub origin: u8,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContainerSpec {
    pub handle: String,
    pub rootfs: String,
    pub image: Value,
    pub bind_mounts: Vec<BindMount>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    pub properties: BTreeMap<String, String>,
    pub privileged: bool,
}

/// The parts of `ContainerInfo` the CPI reads. Go decodes keys
/// case-insensitively and takes `null` for lists; so does this.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContainerInfo {
    #[serde(default, alias = "State", alias = "state")]
    pub state: String,
    #[serde(default, alias = "ContainerIP", alias = "container_ip")]
    pub container_ip: String,
    #[serde(default, alias = "Properties", deserialize_with = "null_default")]
    pub properties: BTreeMap<String, String>,
    #[serde(
        default,
        alias = "ProcessIDs",
        alias = "process_ids",
        deserialize_with = "null_default"
    )]
    pub process_ids: Vec<String>,
    #[serde(
        default,
        alias = "MappedPorts",
        alias = "mapped_ports",
        deserialize_with = "null_default"
    )]
    pub mapped_ports: Vec<PortMapping>,
}

/// One of `MappedPorts`: `{"HostPort", "ContainerPort"}`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    #[serde(default, alias = "HostPort", alias = "host_port")]
    pub host_port: u32,
    #[serde(default, alias = "ContainerPort", alias = "container_port")]
    pub container_port: u32,
}

fn null_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
