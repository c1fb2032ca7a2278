//! `cpi.json` as the softlayer_cpi job renders it
//! (`{"cloud": {"plugin": "softlayer", "properties": {"softlayer": …,
//! "registry": …, "agent": …}}}`), in either key style the Go CPI read
//! (its JSON decoding ignores case: `Cloud.Properties.SoftLayer.ApiKey`),
//! plus the waits this CPI adds under `softlayer.timeouts`.

use agent::{AgentOptions, RegistryConfig};
use cpi::{Error, Result, Secret};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

pub const DEFAULT_ENDPOINT: &str = "https://api.softlayer.com/rest/v3.1";

#[derive(Debug, Deserialize)]
pub struct Config {
    #[serde(alias = "Cloud")]
    pub cloud: CloudBlock,
}

#[derive(Debug, Deserialize)]
pub struct CloudBlock {
    #[serde(default, alias = "Plugin")]
    pub plugin: Option<String>,
    #[serde(alias = "Properties")]
    pub properties: Properties,
}

#[derive(Debug, Deserialize)]
pub struct Properties {
    #[serde(alias = "SoftLayer", alias = "Softlayer")]
    pub softlayer: SoftLayerConfig,
    #[serde(default, alias = "Registry")]
    pub registry: Option<RegistryBlock>,
    #[serde(default, alias = "Agent")]
    pub agent: AgentBlock,
}

// Keys the job renders that this CPI accepts without using are kept as
// fields, so that they are not reported as unknown.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct SoftLayerConfig {
    #[serde(default, alias = "Username")]
    pub username: String,
    #[serde(default, alias = "ApiKey")]
    pub api_key: Secret,
    #[serde(default, alias = "ApiEndpoint")]
    pub api_endpoint: Option<String>,
    /// Without it (the Go CPI's default), a dynamic network with an `ip`
    /// reloads the OS of the guest that has it (`os_reload.rs`).
    #[serde(default, alias = "DisableOsReload")]
    pub disable_os_reload: Option<bool>,
    #[serde(default, alias = "SshPublicKey")]
    pub ssh_public_key: Option<String>,
    #[serde(default, alias = "SshPublicKeyFingerprint")]
    pub ssh_public_key_fingerprint: Option<String>,
    // VPS settings of the Go CPI: accepted, unused.
    #[serde(default, alias = "EnableVps")]
    pub enable_vps: Option<Value>,
    #[serde(default, alias = "VpsHost")]
    pub vps_host: Option<Value>,
    #[serde(default, alias = "VpsPort")]
    pub vps_port: Option<Value>,
    #[serde(default, alias = "VpsUseSsl")]
    pub vps_use_ssl: Option<Value>,
    /// Object storage for heavy stemcells: the auth URL
    /// (`https://lon02.objectstorage.softlayer.net/auth/v1.0`) and the user
    /// (`SLOS1234-1:SL1234`; the part before `:` is the account in the
    /// `swift://` URI). The key is `api_key`, as for the Go CPI, unless
    /// `swift_api_key` is given.
    #[serde(default, alias = "SwiftUsername")]
    pub swift_username: Option<String>,
    #[serde(default, alias = "SwiftEndpoint")]
    pub swift_endpoint: Option<String>,
    #[serde(default, alias = "SwiftApiKey")]
    pub swift_api_key: Option<Secret>,
    /// Bytes per uploaded segment (a dynamic large object joins them);
    /// default 1 GiB, at most 5 GiB (Swift's object limit).
    #[serde(default, alias = "SwiftSegmentSize")]
    pub swift_segment_size: Option<u64>,
    #[serde(default, alias = "Trace")]
    pub trace: Option<Value>,
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// The registry block: `{user, password, address, http{port, user,
/// password}, endpoint}` as rendered; the endpoint carries everything.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
pub struct RegistryBlock {
    #[serde(flatten)]
    pub config: RegistryConfig,
    #[serde(default)]
    pub http: Option<Value>,
}

#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
pub struct AgentBlock {
    #[serde(flatten)]
    pub options: AgentOptions,
    /// Read by the Go CPI for the vcap user's password; the director's
    /// `env.bosh.password` does that job now.
    #[serde(default)]
    pub vcappassword: Option<Secret>,
}

/// Bounds of every wait, in seconds (fractions allowed, so that tests can
/// make them short). No caller times a CPI call out: these are the bounds.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// A new guest to finish provisioning.
    pub vm_ready: f64,
    /// A guest's blocking transaction to end before it can be deleted.
    pub vm_delete: f64,
    /// An ordered volume to appear, or a resize to apply.
    pub disk_ready: f64,
    /// An imported heavy stemcell's template to become active.
    pub stemcell_ready: f64,
    /// Retrying transient API failures (503, throttling, dropped connections).
    pub api_retry: f64,
    /// One HTTP request.
    pub request: f64,
    /// The longest pause between two polls.
    pub poll_max: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            vm_ready: 7200.0,
            vm_delete: 600.0,
            disk_ready: 3600.0,
            stemcell_ready: 3600.0,
            api_retry: 120.0,
            request: 120.0,
            poll_max: 10.0,
        }
    }
}

fn secs(key: &str, v: f64) -> Result<Duration> {
    if v.is_finite() && v > 0.0 && Duration::try_from_secs_f64(v).is_ok() {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(Error::cpi(format!("cloud.properties.softlayer.timeouts.{key}: must be a positive number of seconds, got {v}")))
    }
}

/// The checked timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Waits {
    pub vm_ready: Duration,
    pub vm_delete: Duration,
    pub disk_ready: Duration,
    pub stemcell_ready: Duration,
    pub api_retry: Duration,
    pub request: Duration,
    pub poll_max: Duration,
}

impl Timeouts {
    pub fn check(&self) -> Result<Waits> {
        Ok(Waits {
            vm_ready: secs("vm_ready", self.vm_ready)?,
            vm_delete: secs("vm_delete", self.vm_delete)?,
            disk_ready: secs("disk_ready", self.disk_ready)?,
            stemcell_ready: secs("stemcell_ready", self.stemcell_ready)?,
            api_retry: secs("api_retry", self.api_retry)?,
            request: secs("request", self.request)?,
            poll_max: secs("poll_max", self.poll_max)?,
        })
    }
}

impl Waits {
    /// Polling a resource: 0.5 s (or less) doubling up to `poll_max`.
    pub fn poll(&self, deadline: Duration) -> cpi::wait::Backoff {
        let initial = Duration::from_millis(500).min(self.poll_max);
        cpi::wait::Backoff::new(initial, self.poll_max, deadline)
    }

    /// Retrying a transiently failed API call.
    pub fn api(&self) -> cpi::wait::Backoff {
        let initial = Duration::from_millis(200).min(self.poll_max);
        cpi::wait::Backoff::new(initial, self.poll_max, self.api_retry).attempts(10)
    }
}

/// The config checked once: what `Cloud::new` works from.
#[derive(Debug)]
pub struct Checked {
    pub username: String,
    pub api_key: Secret,
    pub endpoint: String,
    pub waits: Waits,
    pub registry: Option<RegistryConfig>,
    pub agent: AgentOptions,
    /// Object storage, when configured (heavy stemcells need it).
    pub swift: Option<SwiftConfig>,
    /// `agent.vcappassword`: the vcap password when the director's env
    /// gives none (`env.bosh.password`), as the Go CPI did.
    pub vcap_password: Option<Secret>,
    /// Added once to the account and given to every guest.
    pub ssh_public_key: Option<String>,
    pub ssh_public_key_fingerprint: Option<String>,
    /// The Go CPI's switch (default false): OS reload of the guest a
    /// dynamic network's `ip` names.
    pub disable_os_reload: bool,
}

/// Object storage settings, checked.
#[derive(Debug, Clone)]
pub struct SwiftConfig {
    pub auth_url: String,
    pub username: String,
    /// The object storage account: `username` up to `:`.
    pub account: String,
    pub key: Secret,
    pub segment_size: u64,
}

pub const DEFAULT_SEGMENT_SIZE: u64 = 1 << 30;
/// Swift refuses objects over 5 GiB.
const MAX_SEGMENT_SIZE: u64 = 5 << 30;
const MIN_SEGMENT_SIZE: u64 = 64 << 10;

fn check_swift(sl: &SoftLayerConfig) -> Result<Option<SwiftConfig>> {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (endpoint, username) = match (nonempty(&sl.swift_endpoint), nonempty(&sl.swift_username)) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(Error::cpi(
            "cloud.properties.softlayer.swift_username: missing or empty (swift_endpoint is set)",
        )),
        (None, Some(_)) => return Err(Error::cpi(
            "cloud.properties.softlayer.swift_endpoint: missing or empty (swift_username is set)",
        )),
        (Some(e), Some(u)) => (e, u),
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(Error::cpi(format!(
            "cloud.properties.softlayer.swift_endpoint: '{endpoint}' is not an http(s) URL"
        )));
    }
    let account = username
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if account.is_empty() {
        return Err(Error::cpi(
            "cloud.properties.softlayer.swift_username: no object storage account before ':' (e.g. 'SLOS1234-1:SL1234')",
        ));
    }
    let segment_size = sl.swift_segment_size.unwrap_or(DEFAULT_SEGMENT_SIZE);
    if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        return Err(Error::cpi(format!(
            "cloud.properties.softlayer.swift_segment_size: {segment_size} is not between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE} bytes"
        )));
    }
    let key = match &sl.swift_api_key {
        Some(k) if !k.is_empty() => k.clone(),
        _ => sl.api_key.clone(),
    };
    Ok(Some(SwiftConfig {
        auth_url: endpoint,
        username,
        account,
        key,
        segment_size,
    }))
}

impl Config {
    pub fn check(self) -> Result<Checked> {
        if let Some(p) = &self.cloud.plugin {
            if !p.eq_ignore_ascii_case("softlayer") {
                return Err(Error::cpi(format!(
                    "cloud.plugin: '{p}' is not 'softlayer'"
                )));
            }
        }
        let props = self.cloud.properties;
        let sl = props.softlayer;
        if sl.username.trim().is_empty() {
            return Err(Error::cpi(
                "cloud.properties.softlayer.username: missing or empty",
            ));
        }
        if sl.api_key.is_empty() {
            return Err(Error::cpi(
                "cloud.properties.softlayer.api_key: missing or empty",
            ));
        }
        let swift = check_swift(&sl)?;
        let endpoint = sl
            .api_endpoint
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::cpi(format!(
                "cloud.properties.softlayer.api_endpoint: '{endpoint}' is not an http(s) URL"
            )));
        }
        if endpoint.contains("/xmlrpc") {
            return Err(Error::cpi(
                "cloud.properties.softlayer.api_endpoint: the XML-RPC endpoint is not supported: use the REST endpoint (…/rest/v3.1)",
            ));
        }
        if sl
            .enable_vps
            .as_ref()
            .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
        {
            return Err(Error::cpi(
                "cloud.properties.softlayer.enable_vps: the Go CPI's VPS pool server is not supported: guests are ordered from SoftLayer directly (set enable_vps: false)",
            ));
        }
        // The VPS server's address is unused without enable_vps, but a
        // manifest that sets it expects a VPS pool: refused by name, never
        // silently dropped.
        for (key, value) in [
            ("vps_host", &sl.vps_host),
            ("vps_port", &sl.vps_port),
            ("vps_use_ssl", &sl.vps_use_ssl),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
            {
                return Err(Error::cpi(format!(
                    "cloud.properties.softlayer.{key} (job property softlayer.{key}): the VPS pool server is not supported by cpi-softlayer; remove it"
                )));
            }
        }
        let ssh_public_key = sl
            .ssh_public_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned);
        if let Some(k) = &ssh_public_key {
            if !k.starts_with("ssh-") && !k.starts_with("ecdsa-") {
                return Err(Error::cpi(
                    "cloud.properties.softlayer.ssh_public_key: not an OpenSSH public key (ssh-rsa …, ssh-ed25519 …)",
                ));
            }
        }
        let registry = match props.registry {
            Some(block) => {
                block.config.resolve("cloud.properties.registry")?;
                Some(block.config)
            }
            None => None,
        };
        Ok(Checked {
            username: sl.username,
            api_key: sl.api_key,
            endpoint,
            waits: sl.timeouts.check()?,
            registry,
            agent: props.agent.options,
            vcap_password: props.agent.vcappassword.filter(|p| !p.is_empty()),
            swift,
            disable_os_reload: sl.disable_os_reload.unwrap_or(false),
            ssh_public_key,
            ssh_public_key_fingerprint: sl
                .ssh_public_key_fingerprint
                .filter(|f| !f.trim().is_empty()),
        })
    }
}

/// Puts a director `cpi` config's properties over `cloud.properties`.
pub fn merge_context(config: &mut Value, overrides: &serde_json::Map<String, Value>) {
    let overlay = Value::Object(overrides.clone());
    let target = ["cloud", "Cloud"]
        .iter()
        .find_map(|k| config.get(*k).map(|_| *k))
        .and_then(|cloud| {
            let props = ["properties", "Properties"]
                .iter()
                .find(|p| config[cloud].get(**p).is_some())?;
            config.get_mut(cloud)?.get_mut(*props)
        });
    match target {
        Some(props) => cpi::config::deep_merge(props, &overlay),
        None => cpi::config::deep_merge(config, &overlay),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Checked> {
        cpi::config::parse::<Config>(v)?.config.check()
    }

    #[test]
    fn reads_the_rendered_job_config_in_both_key_styles() {
        let c = parse(json!({"cloud": {"plugin": "softlayer", "properties": {
            "softlayer": {"username": "u", "api_key": "k-123"},
            "registry": {"user": "r", "password": "rp-1", "address": "10.0.0.6", "http": {"port": 25777, "user": "r", "password": "rp-1"},
                         "endpoint": "http://r:rp-1@10.0.0.6:25777"},
            "agent": {"ntp": [], "mbus": "nats://n:p@10.0.0.6:4222"}}}}))
        .unwrap();
        assert_eq!(c.endpoint, DEFAULT_ENDPOINT);
        assert!(c.registry.is_some());
        let c = parse(json!({"Cloud": {"Properties": {"SoftLayer": {"Username": "u", "ApiKey": "k-456", "ApiEndpoint": "http://127.0.0.1:1/rest/v3.1/"}}}})).unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:1/rest/v3.1");
    }

    #[test]
    fn names_bad_keys() {
        let e =
            parse(json!({"cloud": {"properties": {"softlayer": {"username": "u"}}}})).unwrap_err();
        assert!(e.message().contains("softlayer.api_key"), "{}", e.message());
        let e = parse(json!({"cloud": {"plugin": "aws", "properties": {"softlayer": {"username": "u", "api_key": "k"}}}})).unwrap_err();
        assert!(e.message().contains("cloud.plugin"), "{}", e.message());
        let e = parse(json!({"cloud": {"properties": {"softlayer": {"username": "u", "api_key": "k", "timeouts": {"vm_ready": 0}}}}})).unwrap_err();
        assert!(e.message().contains("timeouts.vm_ready"), "{}", e.message());
    }

    #[test]
    fn object_storage_keys_are_checked_together() {
        let sl = |extra: Value| {
            let mut v = json!({"username": "u", "api_key": "k-789"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse(json!({"cloud": {"properties": {"softlayer": v}}}))
        };
        assert!(sl(json!({})).unwrap().swift.is_none());
        let c = sl(
            json!({"swift_endpoint": "https://lon02.objectstorage.softlayer.net/auth/v1.0",
                          "swift_username": "SLOS1234-1:SL1234"}),
        )
        .unwrap();
        let swift = c.swift.unwrap();
        assert_eq!(swift.account, "SLOS1234-1");
        assert_eq!(
            swift.key.expose(),
            "k-789",
            "the API key, as the Go CPI used"
        );
        assert_eq!(swift.segment_size, DEFAULT_SEGMENT_SIZE);
        let e = sl(json!({"swift_endpoint": "https://x/auth/v1.0"})).unwrap_err();
        assert!(
            e.message().contains("softlayer.swift_username"),
            "{}",
            e.message()
        );
        let e = sl(json!({"swift_username": "a:b"})).unwrap_err();
        assert!(
            e.message().contains("softlayer.swift_endpoint"),
            "{}",
            e.message()
        );
        let e = sl(json!({"swift_endpoint": "https://x", "swift_username": ":b"})).unwrap_err();
        assert!(e.message().contains("swift_username"), "{}", e.message());
        let e = sl(json!({"swift_endpoint": "https://x", "swift_username": "a:b", "swift_segment_size": 6u64 << 30}))
            .unwrap_err();
        assert!(
            e.message().contains("swift_segment_size"),
            "{}",
            e.message()
        );
        let c = sl(
            json!({"swift_endpoint": "https://x", "swift_username": "a", "swift_api_key": "other"}),
        )
        .unwrap();
        assert_eq!(c.swift.unwrap().key.expose(), "other");
    }

    #[test]
    fn context_overrides_go_under_properties() {
        let mut c =
            json!({"cloud": {"properties": {"softlayer": {"username": "u", "api_key": "k"}}}});
        merge_context(
            &mut c,
            json!({"softlayer": {"username": "other"}})
                .as_object()
                .unwrap(),
        );
        assert_eq!(
            c["cloud"]["properties"]["softlayer"],
            json!({"username": "other", "api_key": "k"})
        );
    }
}
