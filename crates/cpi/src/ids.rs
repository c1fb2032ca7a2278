//! Newtype ids, so that a disk cid can never be passed where a VM cid is due.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! cid {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

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
