//! What a call knows besides its arguments: the request's `context`, the
//! negotiated API version and how the binary was invoked.

use serde_json::{Map, Value};
use std::path::PathBuf;

/// Keys of `context` that describe the call rather than override config.
pub const CALL_KEYS: &[&str] = &["director_uuid", "request_id", "vm", "datacenters"];

#[derive(Clone, Debug, Default)]
pub struct CallContext {
    pub method: String,
    pub request_id: Option<String>,
    pub director_uuid: Option<String>,
    /// The API version the caller chose (1 when absent), capped at what `info` reports.
    pub api_version: u32,
    /// `context.vm.stemcell.api_version`, when the director sent it.
    pub stemcell_api_version: Option<u32>,
    /// The second positional argument or `-caCert`: a CA bundle path.
    pub ca_cert_path: Option<PathBuf>,
    /// The whole `context` as received.
    pub raw: Map<String, Value>,
}

impl CallContext {
    pub fn from_request(
        method: &str,
        context: &Map<String, Value>,
        requested_api: Option<u32>,
        max_api: u32,
    ) -> Self {
        let text = |k: &str| context.get(k).and_then(Value::as_str).map(str::to_owned);
        let stemcell_api_version = context
            .get("vm")
            .and_then(|vm| vm.get("stemcell"))
            .and_then(|s| s.get("api_version"))
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .map(|v| v as u32);
        CallContext {
            method: method.to_owned(),
            request_id: text("request_id"),
            director_uuid: text("director_uuid"),
            api_version: requested_api.unwrap_or(1).clamp(1, max_api.max(1)),
            stemcell_api_version,
            ca_cert_path: None,
            raw: context.clone(),
        }
    }

    /// The `context` keys that override the CPI's config for this call
    /// (properties of a director `cpi` config in multi-CPI setups).
    pub fn config_overrides(&self) -> Map<String, Value> {
        self.raw
            .iter()
            .filter(|(k, _)| !CALL_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_stemcell_api_version_and_caps_api() {
        let ctx = json!({"director_uuid": "d", "request_id": "r", "vm": {"stemcell": {"api_version": 2}}, "region": "x"});
        let c = CallContext::from_request("create_vm", ctx.as_object().unwrap(), Some(5), 2);
        assert_eq!(c.api_version, 2);
        assert_eq!(c.stemcell_api_version, Some(2));
        assert_eq!(c.request_id.as_deref(), Some("r"));
        assert_eq!(
            c.config_overrides(),
            *json!({"region": "x"}).as_object().unwrap()
        );
    }
}
