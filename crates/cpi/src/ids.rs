//! Newtype ids, so that a disk cid can never be passed where a VM cid is due.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A cid is a string on the wire; a number (a SoftLayer guest id written by
/// hand, an old director's integer) is taken as its decimal text. Anything
/// else is refused with serde's message, which the caller names.
fn cid_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Ok(s),
        serde_json::Value::String(_) => Err(serde::de::Error::custom("an id must not be empty")),
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected an id (a string), got {other}"
        ))),
    }
}

macro_rules! cid {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                cid_text(d).map(Self)
            }
        }

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

cid!(
    /// A VM's id in the cloud (instance id, container handle, guest id).
    VmCid
);
cid!(
    /// A persistent disk's id in the cloud.
    DiskCid
);
cid!(
    /// A stemcell's id in the cloud (an image id, or a directory name).
    StemcellCid
);
cid!(
    /// A disk snapshot's id in the cloud.
    SnapshotCid
);
cid!(
    /// A managed network's id in the cloud.
    NetworkCid
);
cid!(
    /// The BOSH agent id the director gives a VM.
    AgentId
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_strings_or_integers_never_empty() {
        assert_eq!(
            serde_json::from_value::<VmCid>(json!("i-1"))
                .unwrap()
                .as_str(),
            "i-1"
        );
        assert_eq!(
            serde_json::from_value::<VmCid>(json!(12345))
                .unwrap()
                .as_str(),
            "12345"
        );
        assert!(serde_json::from_value::<DiskCid>(json!("")).is_err());
        assert!(serde_json::from_value::<DiskCid>(json!({"id": 1})).is_err());
        assert!(serde_json::from_value::<DiskCid>(json!(1.5)).is_err());
    }
}
