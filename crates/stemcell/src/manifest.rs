//! `stemcell.MF`: the stemcell's manifest (YAML).

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(deserialize_with = "string_or_number")]
    pub version: String,
    #[serde(default)]
    pub operating_system: Option<String>,
    /// The stemcell's agent API version: 2+ reads settings from user data.
    #[serde(default)]
    pub api_version: Option<u32>,
    #[serde(default)]
    pub stemcell_formats: Vec<String>,
    #[serde(default)]
    pub sha1: Option<String>,
    #[serde(default)]
    pub cloud_properties: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The image is a disk image to import.
    Heavy,
    /// The image is empty: cloud_properties point at an image that exists.
    Light,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, String> {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }

    /// Light when a format says so (`aws-light`, `openstack-light`,
    /// `softlayer-light`); heavy otherwise.
    pub fn kind(&self) -> Kind {
        if self.stemcell_formats.iter().any(|f| f.ends_with("-light")) {
            Kind::Light
        } else {
            Kind::Heavy
        }
    }
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_shaped_manifest() {
        let m = Manifest::parse(
            "---\nname: bosh-aws-xen-hvm-ubuntu-jammy-go_agent\nversion: '1.506'\nbosh_protocol: '1'\napi_version: 3\n\
             sha1: abc\noperating_system: ubuntu-jammy\nstemcell_formats:\n- aws-light\n\
             cloud_properties:\n  ami:\n    us-east-1: ami-123\n  root_device_name: /dev/sda1\n",
        )
        .unwrap();
        assert_eq!(m.version, "1.506");
        assert_eq!(m.api_version, Some(3));
        assert_eq!(m.kind(), Kind::Light);
        assert_eq!(m.cloud_properties["ami"]["us-east-1"], "ami-123");
        let m = Manifest::parse("name: s\nversion: 621.5\n").unwrap();
        assert_eq!(m.version, "621.5");
        assert_eq!(m.kind(), Kind::Heavy);
    }
}
