//! Keystone v3: the token request (password or application credential,
//! project scope by name or id), and the endpoint of a service chosen from
//! the catalog by type, interface and region. One token per process.

use crate::error::{cloud_message, OsError};
use crate::session::{read, retry_after, throttle_pause, transport, Service, Session};
use crate::token_cache::TokenCache;
use cpi::wait::{retry, Verdict};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub(crate) struct Auth {
    pub(crate) token: String,
    catalog: Vec<CatalogEntry>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct CatalogEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

#[derive(Deserialize, Serialize)]
pub(crate) struct Endpoint {
    interface: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}

#[derive(Deserialize)]
pub(crate) struct TokenBody {
    token: TokenInfo,
}
#[derive(Deserialize)]
pub(crate) struct TokenInfo {
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl Session {
    pub(crate) fn keystone_base(&self) -> String {
        let url = self.opts.auth_url.trim_end_matches('/');
        match url.find("/v3") {
            Some(i) => url[..i + 3].to_owned(),
            None => format!("{url}/v3"),
        }
    }

    pub(crate) fn auth_body(&self) -> Value {
        let o = &*self.opts;
        if let (Some(id), Some(secret)) = (
            &o.application_credential_id,
            &o.application_credential_secret,
        ) {
            return json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.expose()}}}});
        }
        let domain = |fallback: &Option<String>| match o.domain.as_ref().or(fallback.as_ref()) {
            Some(name) => json!({"name": name}),
            None => json!({"id": "default"}),
        };
        let project = match (&o.project_id, o.project.as_ref().or(o.tenant.as_ref())) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(name)) => json!({"name": name, "domain": domain(&o.project_domain_name)}),
            (None, None) => Value::Null,
        };
        let mut body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": o.username, "domain": domain(&o.user_domain_name),
            "password": o.api_key.as_ref().map(|k| k.expose().to_owned()).unwrap_or_default()}}}}});
        if !project.is_null() {
            body["auth"]["scope"] = json!({"project": project});
        }
        body
    }

    /// The token cache for these auth settings, unless turned off.
    fn token_cache(&self) -> Option<TokenCache> {
        let dir = self.opts.token_cache_dir()?;
        let identity = format!("{}\n{}", self.keystone_base(), self.auth_body());
        Some(TokenCache::new(&dir, &identity))
    }

    /// The token and catalog: the one this process already has, else the
    /// shared cache's, else Keystone's (then written to the cache).
    pub(crate) async fn auth(&self) -> Result<Arc<Auth>, OsError> {
        if let Some(a) = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(a);
        }
        let cache = self.token_cache();
        let skip_cache = self.skip_cache.load(Ordering::Relaxed);
        if let Some(c) = cache
            .as_ref()
            .filter(|_| !skip_cache)
            .and_then(TokenCache::load)
        {
            if let Ok(catalog) = serde_json::from_value::<Vec<CatalogEntry>>(c.catalog) {
                cpi::secret::register(&c.token);
                tracing::debug!("Keystone token from the cache");
                return Ok(self.keep(Auth {
                    token: c.token,
                    catalog,
                }));
            }
        }
        let (token, info) = self.request_token().await?;
        if let Some(cache) = &cache {
            let stored = serde_json::to_value(&info.token.catalog)
                .map_err(std::io::Error::other)
                .and_then(|catalog| {
                    cache.store(
                        &token,
                        info.token.expires_at.as_deref().unwrap_or(""),
                        &catalog,
                    )
                });
            if let Err(e) = stored {
                tracing::warn!("token cache {}: not written: {e}", cache.file.display());
            }
        }
        Ok(self.keep(Auth {
            token,
            catalog: info.token.catalog,
        }))
    }

    fn keep(&self, auth: Auth) -> Arc<Auth> {
        let auth = Arc::new(auth);
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth.clone());
        auth
    }

    /// After a 401: the token is no good, nor is the cache's copy of it.
    pub(crate) fn forget_token(&self) {
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.skip_cache.store(true, Ordering::Relaxed);
        if let Some(c) = self.token_cache() {
            c.remove();
        }
    }

    /// POST /v3/auth/tokens, with throttling waited out and 5xx retried.
    async fn request_token(&self) -> Result<(String, TokenBody), OsError> {
        let url = format!("{}/auth/tokens", self.keystone_base());
        let body = self.auth_body();
        let what = "POST /v3/auth/tokens";
        let verdict = Cell::new(Verdict::Fail);
        let throttled = Cell::new(0u32);
        let answer = retry(
            "Keystone token request",
            self.backoff,
            |_| verdict.get(),
            || async {
                verdict.set(Verdict::Fail);
                let req = self
                    .http
                    .post(&url)
                    .map_err(|e| OsError::Setup(e.message().to_owned()))?;
                let answer = match cpi::timing::request(what, req.json(&body).send()).await {
                    Ok(r) => read(what, r).await,
                    Err(e) => Err(transport(what, &e)),
                };
                let (status, headers, bytes) = answer.inspect_err(|e| {
                    if matches!(e, OsError::Transport { .. }) {
                        verdict.set(Verdict::Retry);
                    }
                })?;
                let text = String::from_utf8_lossy(&bytes);
                if status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::SERVICE_UNAVAILABLE
                {
                    throttled.set(throttled.get() + 1);
                    let hint = retry_after(&headers, &text);
                    verdict.set(Verdict::ThrottledFor(throttle_pause(throttled.get(), hint)));
                } else if status.is_server_error() {
                    verdict.set(Verdict::Retry);
                }
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    return Err(OsError::Status {
                        what: what.to_owned(),
                        status: status.as_u16(),
                        message: cloud_message(&text),
                    }
                    .into());
                }
                Ok((status, headers, bytes))
            },
        )
        .await
        .map_err(|e| OsError::Auth(e.message().to_owned()))?;
        let (status, headers, bytes) = answer;
        if !status.is_success() {
            return Err(OsError::Auth(format!(
                "Keystone answered {}: {}",
                status.as_u16(),
                cloud_message(&String::from_utf8_lossy(&bytes))
            )));
        }
        let token = headers
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| OsError::Auth("Keystone answered without X-Subject-Token".into()))?;
        cpi::secret::register(&token);
        let info: TokenBody = serde_json::from_slice(&bytes)
            .map_err(|e| OsError::Auth(format!("token body: {e}")))?;
        Ok((token, info))
    }

    pub(crate) fn endpoint(&self, auth: &Auth, service: Service) -> Result<String, OsError> {
        let interface = self.opts.interface();
        let region = self.opts.region.as_deref();
        for kind in service.catalog_types() {
            let matches: Vec<&Endpoint> = auth
                .catalog
                .iter()
                .filter(|e| e.kind == *kind)
                .flat_map(|e| e.endpoints.iter())
                .filter(|e| e.interface == interface)
                .filter(|e| {
                    region.is_none_or(|r| {
                        e.region.as_deref() == Some(r) || e.region_id.as_deref() == Some(r)
                    })
                })
                .collect();
            match matches.as_slice() {
                [] => continue,
                [one] => {
                    let base = one.url.trim_end_matches('/');
                    let suffix = service.version_suffix();
                    return Ok(if suffix.is_empty() || base.ends_with(suffix) {
                        base.to_owned()
                    } else {
                        format!("{base}{suffix}")
                    });
                }
                _ => {
                    return Err(OsError::Catalog(format!(
                        "Multiple endpoints found for '{kind}' ({interface}); set openstack.region"
                    )))
                }
            }
        }
        Err(OsError::Catalog(format!(
            "no '{}' endpoint with interface '{interface}'{}",
            service.catalog_types()[0],
            region
                .map(|r| format!(" in region '{r}'"))
                .unwrap_or_default()
        )))
    }
}
