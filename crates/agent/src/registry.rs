//! The BOSH registry: settings for stemcell API v1 VMs, kept over HTTP with
//! basic auth (`PUT|GET|DELETE {endpoint}/instances/{vm_cid}/settings`).

use crate::settings::Settings;
use cpi::{Error, Result, Secret, VmCid};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// The registry block, in any form today's jobs render: `{endpoint, user,
/// password}` (Ruby CPIs; credentials may also sit in the endpoint URL) or
/// `{Protocol, Host, Port, Username, Password}` (Go CPIs).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct RegistryConfig {
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default, alias = "Protocol")]
    pub protocol: Option<String>,
    #[serde(default, alias = "Host", alias = "address")]
    pub host: Option<String>,
    #[serde(default, alias = "Port")]
    pub port: Option<u16>,
    #[serde(default, alias = "Username", alias = "username")]
    pub user: Option<String>,
    #[serde(default, alias = "Password")]
    pub password: Option<Secret>,
}

/// A validated registry location: base URL without credentials, and the
/// credentials apart.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedRegistry {
    pub base: url::Url,
    pub user: String,
    pub password: Secret,
}

impl RegistryConfig {
    /// Checks the block once; errors name the key (`registry.password`).
    /// `prefix` is where the block sits in the config (`registry`, `Registry`).
    pub fn resolve(&self, prefix: &str) -> Result<ResolvedRegistry> {
        // The key an error names: the endpoint, or the parts it was made of.
        let (raw, key) = match (&self.endpoint, &self.host) {
            (Some(e), _) if !e.trim().is_empty() => (e.trim().to_owned(), "endpoint"),
            (_, Some(host)) if !host.is_empty() => {
                let scheme = self.protocol.clone().unwrap_or_else(|| "http".into());
                let url = match self.port {
                    Some(p) => format!("{scheme}://{host}:{p}"),
                    None => format!("{scheme}://{host}"),
                };
                (url, "host (with protocol and port)")
            }
            _ => {
                return Err(Error::cpi(format!(
                    "{prefix}.endpoint: missing: the registry needs an endpoint (or host and port)"
                )))
            }
        };
        let mut base = url::Url::parse(&raw).map_err(|e| {
            Error::cpi(format!(
                "{prefix}.{key}: '{}' is not a URL: {e}",
                cpi::secret::redact(&raw)
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(Error::cpi(format!(
                "{prefix}.{key}: '{}' is not an http(s) URL with a host",
                cpi::secret::redact(&raw)
            )));
        }
        let url_user = (!base.username().is_empty()).then(|| base.username().to_owned());
        let url_pass = base.password().map(|p| Secret::new(p.to_owned()));
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let user = self.user.clone().filter(|u| !u.is_empty()).or(url_user).ok_or_else(|| {
            Error::cpi(format!("{prefix}.user: missing: the registry needs a user (`user` or `Username`, or credentials in the endpoint)"))
        })?;
        let password = self
            .password
            .clone()
            .filter(|p| !p.is_empty())
            .or(url_pass)
            .ok_or_else(|| {
                Error::cpi(format!(
                    "{prefix}.password: missing: the registry needs a password (or credentials in the endpoint)"
                ))
            })?;
        Ok(ResolvedRegistry {
            base,
            user,
            password,
        })
    }

    /// `http://user:password@host:port`, as the agent reads it from user
    /// data. Empty when the block does not resolve.
    pub fn endpoint_with_credentials(&self) -> String {
        match self.resolve("registry") {
            Ok(r) => {
                let mut u = r.base.clone();
                let _ = u.set_username(&r.user);
                let _ = u.set_password(Some(r.password.expose()));
                u.as_str().trim_end_matches('/').to_owned()
            }
            Err(_) => String::new(),
        }
    }
}

/// Talks to the registry. Building it touches no network.
pub struct RegistryClient {
    registry: ResolvedRegistry,
    http: cpi::http::Clients,
}

#[derive(Deserialize)]
struct GetResponse {
    settings: String,
}

impl RegistryClient {
    pub fn new(config: &RegistryConfig, prefix: &str) -> Result<Self> {
        let registry = config.resolve(prefix)?;
        // TLS (the system's trust store) is set up only for an https registry.
        let http = cpi::http::Clients::new("the registry client", |b| {
            b.timeout(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(10))
        });
        Ok(RegistryClient { registry, http })
    }

    fn url(&self, vm: &VmCid) -> String {
        format!(
            "{}/instances/{}/settings",
            self.registry.base.as_str().trim_end_matches('/'),
            vm
        )
    }

    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let send = req
            .basic_auth(&self.registry.user, Some(self.registry.password.expose()))
            .send();
        cpi::timing::request(&format!("registry {what}"), send)
            .await
            .map_err(|e| Error::cloud(format!("registry {what}: {}", without_url(&e))).retry(true))
    }

    /// Stores the VM's settings.
    pub async fn put(&self, vm: &VmCid, settings: &Settings) -> Result<()> {
        let body = serde_json::to_string(settings).map_err(|e| Error::cpi(e.to_string()))?;
        let resp = self
            .send("put settings", self.http.put(&self.url(vm))?.body(body))
            .await?;
        check(resp.status(), "put settings", vm)
    }

    /// The VM's settings; None when the registry has none.
    pub async fn get(&self, vm: &VmCid) -> Result<Option<Settings>> {
        let resp = self
            .send("get settings", self.http.get(&self.url(vm))?)
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check(resp.status(), "get settings", vm)?;
        let body = read_capped(resp, vm).await?;
        decode_settings(vm, &body).map(Some)
    }

    /// Removes the VM's settings; already gone is success.
    pub async fn delete(&self, vm: &VmCid) -> Result<()> {
        let resp = self
            .send("delete settings", self.http.delete(&self.url(vm))?)
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        check(resp.status(), "delete settings", vm)
    }
}

/// The most read from a registry answer: a settings document is a few KiB;
/// a peer sending more (or without end) gets an error, not our memory.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

async fn read_capped(mut resp: reqwest::Response, vm: &VmCid) -> Result<Vec<u8>> {
    let too_big = || {
        Error::cloud(format!(
            "registry get settings for {vm}: the answer is larger than {MAX_ANSWER_BYTES} bytes"
        ))
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        Error::cloud(format!(
            "registry get settings for {vm}: reading the answer: {}",
            without_url(&e)
        ))
        .retry(true)
    })? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The settings in a registry answer (`{"settings": "<JSON text>"}`); every
/// error names the VM and what was wrong.
pub fn decode_settings(vm: &VmCid, body: &[u8]) -> Result<Settings> {
    let answer: GetResponse = serde_json::from_slice(body)
        .map_err(|e| Error::cloud(format!("registry get settings for {vm}: bad response: {e}")))?;
    let settings: Value = serde_json::from_str(&answer.settings)
        .map_err(|e| Error::cloud(format!("registry settings for {vm} are not JSON: {e}")))?;
    serde_json::from_value(settings)
        .map_err(|e| Error::cloud(format!("registry settings for {vm}: {e}")))
}

fn check(status: reqwest::StatusCode, what: &str, vm: &VmCid) -> Result<()> {
    if status.is_success() {
        Ok(())
    } else {
        Err(
            Error::cloud(format!("registry {what} for {vm}: HTTP {status}"))
                .retry(status.is_server_error()),
        )
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "registry");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> RegistryConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn accepts_ruby_and_go_forms() {
        let r = cfg(
            json!({"endpoint": "http://10.0.0.6:25777", "user": "admin", "password": "reg-pw-1"}),
        )
        .resolve("registry")
        .unwrap();
        assert_eq!(r.base.as_str(), "http://10.0.0.6:25777/");
        let r = cfg(json!({"endpoint": "http://admin:reg-pw-2@10.0.0.6:25777"}))
            .resolve("registry")
            .unwrap();
        assert_eq!(
            (r.user.as_str(), r.password.expose()),
            ("admin", "reg-pw-2")
        );
        let r = cfg(json!({"Protocol": "http", "Host": "127.0.0.1", "Port": 25777, "Username": "u", "Password": "reg-pw-3"}))
            .resolve("Registry")
            .unwrap();
        assert_eq!(r.base.as_str(), "http://127.0.0.1:25777/");
        assert_eq!(
            cfg(json!({"endpoint": "http://10.0.0.6:25777", "user": "admin", "password": "reg-pw-1"})).endpoint_with_credentials(),
            "http://admin:reg-pw-1@10.0.0.6:25777"
        );
    }

    #[test]
    fn names_what_is_missing() {
        let e = cfg(json!({"endpoint": "http://10.0.0.6:25777"}))
            .resolve("registry")
            .unwrap_err();
        assert!(
            e.message().starts_with("registry.user: missing"),
            "{}",
            e.message()
        );
        let e = cfg(json!({"endpoint": "http://10.0.0.6:25777", "user": "u"}))
            .resolve("registry")
            .unwrap_err();
        assert!(
            e.message().starts_with("registry.password: missing"),
            "{}",
            e.message()
        );
        let e = cfg(json!({"endpoint": "not a url", "user": "u", "password": "p"}))
            .resolve("registry")
            .unwrap_err();
        assert!(
            e.message().starts_with("registry.endpoint:"),
            "{}",
            e.message()
        );
        let e = cfg(json!({})).resolve("registry").unwrap_err();
        assert!(
            e.message().starts_with("registry.endpoint: missing"),
            "{}",
            e.message()
        );
    }
}
