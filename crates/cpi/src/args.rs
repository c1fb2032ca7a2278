//! Typed method arguments, and the positional parsing that names the bad
//! argument (and the path inside it) when a request does not fit.

use crate::ids::*;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Free-form `cloud_properties` as the manifest gives them; each cloud
/// deserialises them into its own typed struct.
pub type CloudProperties = Map<String, Value>;

/// The networks of a `create_vm`, by name.
pub type Networks = BTreeMap<String, Network>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkType {
    #[default]
    Manual,
    Dynamic,
    Vip,
}

/// One network as the director describes it. Unknown keys are kept, so that
/// the v2 `create_vm` answer hands back everything the director sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    #[serde(rename = "type", default)]
    pub kind: NetworkType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cloud_properties: CloudProperties,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Metadata the director sends (`set_vm_metadata`, `set_disk_metadata`,
/// `snapshot_disk`). Values are strings on the wire, but older directors and
/// hand-written requests send numbers and booleans: those become strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Metadata(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
        Ok(Metadata(
            raw.into_iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k, s)
                })
                .collect(),
        ))
    }
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateStemcell {
    /// The unpacked stemcell's `image` file (a gzipped tar holding `root.img`,
    /// or an empty/placeholder file for a light stemcell).
    pub image_path: PathBuf,
    /// `cloud_properties` from `stemcell.MF`.
    pub cloud_properties: CloudProperties,
    /// v3: tags to put on the image.
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateVm {
    pub agent_id: AgentId,
    pub stemcell_cid: StemcellCid,
    pub cloud_properties: CloudProperties,
    pub networks: Networks,
    pub disk_cids: Vec<DiskCid>,
    /// The director's `env` (may hold passwords: never log it).
    pub env: Map<String, Value>,
}

/// What `create_vm` made. v1 answers the cid; v2 the cid and the networks.
#[derive(Clone, Debug, PartialEq)]
pub struct CreatedVm {
    pub cid: VmCid,
    pub networks: Networks,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct VmResources {
    pub cpu: u32,
    /// MiB
    pub ram: u64,
    /// MiB
    pub ephemeral_disk_size: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateDisk {
    pub size_mb: u64,
    pub cloud_properties: CloudProperties,
    pub vm_cid: Option<VmCid>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UpdateDisk {
    pub disk_cid: DiskCid,
    pub new_size_mb: u64,
    pub cloud_properties: CloudProperties,
}

/// The v2 `attach_disk` answer: where the agent finds the disk. Never empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DiskHint {
    Path(String),
    Object(Map<String, Value>),
}

impl DiskHint {
    pub fn is_empty(&self) -> bool {
        match self {
            DiskHint::Path(p) => p.is_empty(),
            DiskHint::Object(m) => m.is_empty(),
        }
    }
}

/// `info`'s answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Info {
    pub stemcell_formats: Vec<String>,
    pub api_version: u32,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Positional arguments of one request, read one by one by name.
pub struct Args<'a> {
    method: &'a str,
    names: &'static [&'static str],
    values: Vec<Value>,
}

impl<'a> Args<'a> {
    /// `names` lists every argument the method takes, in order; the first
    /// `required` must be present. Extra trailing arguments are ignored, as
    /// newer callers may send arguments this CPI does not know.
    pub fn new(
        method: &'a str,
        values: Vec<Value>,
        names: &'static [&'static str],
        required: usize,
    ) -> Result<Self> {
        if values.len() < required {
            return Err(Error::cpi(format!(
                "{method}: expected {required} argument{} ({}), got {}",
                if required == 1 { "" } else { "s" },
                names[..required].join(", "),
                values.len()
            )));
        }
        Ok(Args {
            method,
            names,
            values,
        })
    }

    /// The argument at `index`, typed; the error names it and the bad path.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        let value = self.values.get(index).cloned().unwrap_or(Value::Null);
        self.parse(index, value)
    }

    /// An optional argument: absent or null is `None`.
    pub fn opt<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>> {
        match self.values.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.parse(index, v.clone()).map(Some),
        }
    }

    fn parse<T: DeserializeOwned>(&self, index: usize, value: Value) -> Result<T> {
        let name = self.names.get(index).copied().unwrap_or("argument");
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!(" at '{path}'")
            };
            Error::cpi(format!(
                "{}: argument {} ({name}){at}: {}",
                self.method,
                index + 1,
                e.inner()
            ))
        })
    }
}

/// A `cloud_properties` map (or any JSON) read into a cloud's typed struct,
/// with errors naming the key: `create_vm: cloud_properties.instance_type: …`.
pub fn typed<T: DeserializeOwned>(what: &str, value: impl Serialize) -> Result<T> {
    let value = serde_json::to_value(value).map_err(|e| Error::cpi(format!("{what}: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            Error::cpi(format!("{what}: {}", e.inner()))
        } else {
            Error::cpi(format!("{what}.{path}: {}", e.inner()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_argument_and_path() {
        let args = Args::new(
            "create_vm",
            vec![json!("a"), json!({"default": {"type": "bogus"}})],
            &["agent_id", "networks"],
            2,
        )
        .unwrap();
        let e = args.get::<Networks>(1).unwrap_err();
        assert!(
            e.message().contains("argument 2 (networks)"),
            "{}",
            e.message()
        );
        assert!(e.message().contains("default.type"), "{}", e.message());
    }

    #[test]
    fn too_few_arguments_are_named() {
        let e = match Args::new("has_vm", vec![], &["vm_cid"], 1) {
            Err(e) => e,
            Ok(_) => panic!("accepted no arguments"),
        };
        assert_eq!(e.message(), "has_vm: expected 1 argument (vm_cid), got 0");
    }

    #[test]
    fn metadata_accepts_scalars() {
        let m: Metadata =
            serde_json::from_value(json!({"index": 0, "compiling": true, "name": "x", "n": null}))
                .unwrap();
        assert_eq!(m.get("index"), Some("0"));
        assert_eq!(m.get("compiling"), Some("true"));
        assert_eq!(m.get("n"), Some(""));
    }

    #[test]
    fn network_round_trips_unknown_keys() {
        let n = json!({"type": "dynamic", "cloud_properties": {"subnet": "s"}, "dns": ["1.1.1.1"], "custom": 1});
        let net: Network = serde_json::from_value(n.clone()).unwrap();
        assert_eq!(net.kind, NetworkType::Dynamic);
        assert_eq!(serde_json::to_value(&net).unwrap(), n);
    }
}
