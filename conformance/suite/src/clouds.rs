//! The clouds the suite knows: a name, the CPI binary's name, and how to
//! start the cloud's environment (its crate's `start_environment`).

use harness::{Environment, RegistryEndpoint};
use std::path::Path;

type Start = fn(&Path, &RegistryEndpoint) -> Result<Box<dyn Environment>, String>;

pub struct Cloud {
    pub name: &'static str,
    pub start: Start,
}

impl Cloud {
    /// `cpi-<name>`: the binary `demo` looks for in its bin dir.
    pub fn binary(&self) -> String {
        format!("cpi-{}", self.name)
    }
}

/// For a cloud whose feature is off in this build.
#[allow(dead_code)]
fn not_built(_: &Path, _: &RegistryEndpoint) -> Result<Box<dyn Environment>, String> {
    Err("this cloud is not built into this binary (its cargo feature is off)".into())
}

pub const CLOUDS: &[Cloud] = &[
    Cloud {
        name: "warden",
        #[cfg(feature = "warden")]
        start: fake_garden::start_environment,
        #[cfg(not(feature = "warden"))]
        start: not_built,
    },
    Cloud {
        name: "aws",
        #[cfg(feature = "aws")]
        start: env_aws::start_environment,
        #[cfg(not(feature = "aws"))]
        start: not_built,
    },
    Cloud {
        name: "openstack",
        #[cfg(feature = "openstack")]
        start: fake_openstack::start_environment,
        #[cfg(not(feature = "openstack"))]
        start: not_built,
    },
    Cloud {
        name: "softlayer",
        #[cfg(feature = "softlayer")]
        start: fake_softlayer::start_environment,
        #[cfg(not(feature = "softlayer"))]
        start: not_built,
    },
    Cloud {
        name: "reference",
        start: reference_cloud::start_environment,
    },
];

/// The clouds `demo` runs unless told otherwise: the real CPIs.
pub const DEMO_DEFAULT: &[&str] = &["warden", "aws", "openstack", "softlayer"];

pub fn find(name: &str) -> Result<&'static Cloud, String> {
    CLOUDS.iter().find(|c| c.name == name).ok_or_else(|| {
        let names: Vec<&str> = CLOUDS.iter().map(|c| c.name).collect();
        format!("unknown cloud '{name}' (known: {})", names.join(", "))
    })
}
