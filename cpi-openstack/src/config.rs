//! The `cpi.json` the openstack_cpi job renders (Ruby) or the Go job renders,
//! typed once. Defaults are the job spec's; every key the templates render is
//! accepted, keys this CPI does not use are warned about by the runner.

use agent::{AgentOptions, RegistryConfig};
use cpi::Secret;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Deserialize)]
pub struct Config {
    pub cloud: CloudBlock,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // accepted as the jobs render them; not needed to act
pub struct CloudBlock {
    #[serde(default)]
    pub plugin: Option<String>,
    pub properties: Properties,
}

#[derive(Debug, Deserialize)]
pub struct Properties {
    pub openstack: OpenStackOptions,
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    #[serde(default)]
    pub agent: AgentOptions,
}

/// `cloud.properties.openstack`.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // accepted as the jobs render them; not needed to act
pub struct OpenStackOptions {
    pub auth_url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub application_credential_id: Option<String>,
    #[serde(default)]
    pub application_credential_secret: Option<Secret>,
    /// Domain of the user and of the project (the Ruby CPI uses it for both).
    #[serde(default)]
    pub domain: Option<String>,
    /// Rendered by the job, ignored by the Ruby CPI; used only when `domain`
    /// is absent.
    #[serde(default)]
    pub user_domain_name: Option<String>,
    #[serde(default)]
    pub project_domain_name: Option<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    /// Keystone v2 name of the project; taken as `project` when that is absent.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// `publicURL`, `internalURL`, `adminURL` (or without `URL`).
    #[serde(default)]
    pub endpoint_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub default_key_name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub default_security_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub default_volume_type: Option<String>,
    #[serde(default = "default_poll")]
    pub wait_resource_poll_interval: u64,
    #[serde(default = "default_state_timeout")]
    pub state_timeout: u64,
    #[serde(default)]
    pub stemcell_public_visibility: bool,
    /// A hash (Ruby job) or a JSON string (Go job).
    #[serde(default)]
    pub connection_options: Option<Value>,
    #[serde(default)]
    pub boot_from_volume: bool,
    /// `cdrom` or `disk`: a config drive is requested only when set.
    #[serde(default, deserialize_with = "null_default")]
    pub config_drive: Option<String>,
    #[serde(default = "yes")]
    pub use_dhcp: bool,
    #[serde(default)]
    pub ignore_server_availability_zone: bool,
    #[serde(default)]
    pub human_readable_vm_names: bool,
    /// Rendered by every job version; Nova networking is long gone.
    #[serde(default)]
    pub use_nova_networking: bool,
    #[serde(default)]
    pub enable_auto_anti_affinity: bool,
    /// Share the Keystone token between successive CPI processes (see
    /// `token_cache.rs`). On by default; `false` turns it off.
    #[serde(default = "yes")]
    pub token_cache: bool,
    /// Where the token cache lives; by default `/var/vcap/data/openstack_cpi`
    /// when `/var/vcap/data` exists (a BOSH VM), else no cache.
    #[serde(default, deserialize_with = "null_default")]
    pub token_cache_dir: Option<String>,
}

fn default_poll() -> u64 {
    5
}
fn default_state_timeout() -> u64 {
    300
}
fn yes() -> bool {
    true
}

fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// TLS and timeout options from `connection_options`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConnectionOptions {
    pub ssl_verify_peer: bool,
    pub ca_file: Option<String>,
    pub timeout: Option<Duration>,
}

impl OpenStackOptions {
    /// `connection_options` in either form; errors name the key.
    pub fn connection(&self) -> cpi::Result<ConnectionOptions> {
        let value = match &self.connection_options {
            None | Some(Value::Null) => {
                return Ok(ConnectionOptions {
                    ssl_verify_peer: true,
                    ..Default::default()
                })
            }
            Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Default::default()),
            Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| {
                cpi::Error::cpi(format!(
                    "openstack.connection_options: not a JSON object: {e}"
                ))
            })?,
            Some(v) => v.clone(),
        };
        let obj = value
            .as_object()
            .ok_or_else(|| cpi::Error::cpi("openstack.connection_options: must be a hash"))?;
        let verify = obj
            .get("ssl_verify_peer")
            .map(|v| v.as_bool().unwrap_or(v.as_str() != Some("false")));
        let timeout = ["read_timeout", "connect_timeout", "write_timeout"]
            .iter()
            .filter_map(|k| obj.get(*k).and_then(Value::as_f64))
            .fold(None::<f64>, |acc, t| Some(acc.map_or(t, |a| a.max(t))));
        Ok(ConnectionOptions {
            ssl_verify_peer: verify.unwrap_or(true),
            ca_file: obj
                .get("ssl_ca_file")
                .or(obj.get("ca_file"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            timeout: timeout.filter(|t| *t > 0.0).map(Duration::from_secs_f64),
        })
    }

    /// The token cache's directory, or None when it is off.
    pub fn token_cache_dir(&self) -> Option<std::path::PathBuf> {
        if !self.token_cache {
            return None;
        }
        match &self.token_cache_dir {
            Some(d) if !d.is_empty() => Some(d.into()),
            _ => std::path::Path::new(crate::token_cache::JOB_DATA)
                .is_dir()
                .then(|| crate::token_cache::DEFAULT_DIR.into()),
        }
    }

    /// How long a resource may stay in a transitional state.
    pub fn state_timeout(&self) -> Duration {
        Duration::from_secs(self.state_timeout.max(1))
    }

    /// The catalog interface: `publicURL` → `public`.
    pub fn interface(&self) -> String {
        let raw = self.endpoint_type.as_deref().unwrap_or("publicURL");
        raw.trim_end_matches("URL").to_ascii_lowercase()
    }

    /// Checks the auth keys once, with messages naming them.
    pub fn validate(&self) -> cpi::Result<()> {
        // Declared by the job, not implemented here: set, they fail by name.
        if self.use_nova_networking {
            return Err(cpi::Error::cpi(
                "openstack.use_nova_networking: true is not supported by cpi-openstack, which uses Neutron only",
            ));
        }
        let u = url::Url::parse(&self.auth_url).map_err(|e| {
            cpi::Error::cpi(format!(
                "openstack.auth_url: '{}' is not a URL: {e}",
                self.auth_url
            ))
        })?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(cpi::Error::cpi("openstack.auth_url: must be http or https"));
        }
        if u.path().contains("/v2.0") {
            return Err(cpi::Error::cpi(format!(
                "openstack.auth_url: '{}' is a Keystone v2.0 endpoint: Keystone v2 is not supported (removed from OpenStack in Queens); use the v3 endpoint",
                self.auth_url
            )));
        }
        if self.use_nova_networking {
            return Err(cpi::Error::cpi(
                "openstack.use_nova_networking: true is not supported: Nova networking was removed from OpenStack; this CPI uses Neutron",
            ));
        }
        if self.application_credential_id.is_some() {
            if self
                .application_credential_secret
                .as_ref()
                .is_none_or(|s| s.is_empty())
            {
                return Err(cpi::Error::cpi(
                    "openstack.application_credential_secret: missing: required with application_credential_id",
                ));
            }
            return Ok(());
        }
        if self.username.as_deref().unwrap_or("").is_empty() {
            return Err(cpi::Error::cpi(
                "openstack.username: missing: set username and api_key, or application_credential_id and _secret",
            ));
        }
        if self.api_key.as_ref().is_none_or(|s| s.is_empty()) {
            return Err(cpi::Error::cpi(
                "openstack.api_key: missing: the password of openstack.username",
            ));
        }
        if self.project.is_none() && self.tenant.is_none() && self.project_id.is_none() {
            return Err(cpi::Error::cpi(
                "openstack.project: missing: set project (or project_id, or tenant)",
            ));
        }
        if let Some(cd) = &self.config_drive {
            if !matches!(cd.as_str(), "cdrom" | "disk") {
                return Err(cpi::Error::cpi(format!(
                    "openstack.config_drive: '{cd}' is not 'cdrom' or 'disk'"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> OpenStackOptions {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn connection_options_in_both_forms() {
        let o = opts(
            json!({"auth_url": "http://k/v3", "connection_options": {"ssl_verify_peer": false}}),
        );
        assert!(!o.connection().unwrap().ssl_verify_peer);
        let o = opts(
            json!({"auth_url": "http://k/v3", "connection_options": "{\"ssl_verify_peer\": false, \"read_timeout\": 30}"}),
        );
        let c = o.connection().unwrap();
        assert!(!c.ssl_verify_peer);
        assert_eq!(c.timeout, Some(Duration::from_secs(30)));
    }

    #[test]
    fn names_missing_auth_keys() {
        let e = opts(json!({"auth_url": "http://k/v3", "username": "u"}))
            .validate()
            .unwrap_err();
        assert!(
            e.message().starts_with("openstack.api_key"),
            "{}",
            e.message()
        );
        let e = opts(json!({"auth_url": "http://k/v3", "application_credential_id": "a"}))
            .validate()
            .unwrap_err();
        assert!(
            e.message()
                .starts_with("openstack.application_credential_secret"),
            "{}",
            e.message()
        );
        assert_eq!(
            opts(json!({"auth_url": "http://k/v3", "endpoint_type": "internalURL"})).interface(),
            "internal"
        );
    }
}
