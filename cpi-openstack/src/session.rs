//! One authenticated session for the whole call: the Keystone v3 token, the
//! service catalog and endpoint choice, TLS, and sending typed requests with
//! the retry rules below. Every request to OpenStack goes through here.
//!
//! Retries: reads, deletes and idempotent actions are retried on 5xx, 429,
//! 413 and lost connections; creates only on 429/413 (refused, so nothing was
//! made) — after a 5xx on a create the caller looks the resource up first.
//! A 401 re-authenticates once. The token is registered as a secret.

use crate::config::OpenStackOptions;
use crate::error::{cloud_message, OsError};
use cpi::wait::{retry, Backoff, Verdict};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Nova microversion requested: what the Ruby CPI caps at.
const NOVA_MICROVERSION: &str = "2.15";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Compute,
    Volume,
    Image,
    Network,
}

impl Service {
    fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Compute => &["compute"],
            // Real clouds list Cinder as `volumev3`; newer ones also as `block-storage`.
            Service::Volume => &["volumev3", "block-storage"],
            Service::Image => &["image"],
            Service::Network => &["network"],
        }
    }
    /// Glance and Neutron list an unversioned root in the catalog.
    fn version_suffix(self) -> &'static str {
        match self {
            Service::Image => "/v2",
            Service::Network => "/v2.0",
            _ => "",
        }
    }
}

/// Whether a request may be repeated after an answer that may mean it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    /// A create: repeated only when the cloud said it did not run it.
    Create,
}

struct Auth {
    token: String,
    catalog: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

#[derive(Deserialize)]
struct Endpoint {
    interface: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    region_id: Option<String>,
    url: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}
#[derive(Deserialize)]
struct TokenInfo {
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
}

pub struct Session {
    http: reqwest::Client,
    opts: Arc<OpenStackOptions>,
    auth: Mutex<Option<Arc<Auth>>>,
    pub backoff: Backoff,
}

impl Session {
    /// Builds the HTTP client (TLS roots, timeouts). Touches no network.
    pub fn new(
        opts: Arc<OpenStackOptions>,
        ca_cert_path: Option<&std::path::Path>,
    ) -> Result<Session, OsError> {
        let conn = opts
            .connection()
            .map_err(|e| OsError::Setup(e.message().to_owned()))?;
        let mut builder = reqwest::Client::builder()
            .timeout(conn.timeout.unwrap_or(Duration::from_secs(60)))
            .connect_timeout(Duration::from_secs(10));
        let ca_files = ca_cert_path
            .map(|p| p.to_path_buf())
            .into_iter()
            .chain(conn.ca_file.map(Into::into));
        for path in ca_files {
            let pem = std::fs::read(&path).map_err(|e| {
                OsError::Setup(format!("reading CA certificate {}: {e}", path.display()))
            })?;
            if pem.iter().all(u8::is_ascii_whitespace) {
                continue; // the job writes an empty file when no CA is set
            }
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| OsError::Setup(format!("CA certificate {}: {e}", path.display())))?;
            builder = builder.tls_certs_merge(certs);
        }
        if !conn.ssl_verify_peer {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| OsError::Setup(format!("building the HTTP client: {e}")))?;
        Ok(Session {
            http,
            opts,
            auth: Mutex::new(None),
            backoff: Backoff::api(),
        })
    }

    fn keystone_base(&self) -> String {
        let url = self.opts.auth_url.trim_end_matches('/');
        match url.find("/v3") {
            Some(i) => url[..i + 3].to_owned(),
            None => format!("{url}/v3"),
        }
    }

    fn auth_body(&self) -> Value {
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

    /// The token and catalog, asking Keystone once per process.
    async fn auth(&self) -> Result<Arc<Auth>, OsError> {
        if let Some(a) = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(a);
        }
        let url = format!("{}/auth/tokens", self.keystone_base());
        let body = self.auth_body();
        let resp = retry(
            "Keystone token request",
            self.backoff,
            transient_only,
            || async {
                let resp = self
                    .http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| cpi::Error::from(transport("POST /v3/auth/tokens", &e)))?;
                let status = resp.status();
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    let message = cloud_message(&resp.text().await.unwrap_or_default());
                    let what = "POST /v3/auth/tokens".to_owned();
                    return Err(OsError::Status {
                        what,
                        status: status.as_u16(),
                        message,
                    }
                    .into());
                }
                Ok(resp)
            },
        )
        .await
        .map_err(|e| OsError::Auth(e.message().to_owned()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(OsError::Auth(format!(
                "Keystone answered {}: {}",
                status.as_u16(),
                cloud_message(&text)
            )));
        }
        let token = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| OsError::Auth("Keystone answered without X-Subject-Token".into()))?;
        cpi::secret::register(&token);
        let info: TokenBody = resp
            .json()
            .await
            .map_err(|e| OsError::Auth(format!("token body: {e}")))?;
        let auth = Arc::new(Auth {
            token,
            catalog: info.token.catalog,
        });
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth.clone());
        Ok(auth)
    }

    fn endpoint(&self, auth: &Auth, service: Service) -> Result<String, OsError> {
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

    /// Sends one request; answers the response of a 2xx, `None` for a 404,
    /// and errors carrying the cloud's message otherwise.
    pub async fn send(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Option<reqwest::Response>, OsError> {
        let what = format!("{method} {path}");
        let verdict = Cell::new(Verdict::Fail);
        let reauthed = Cell::new(false);
        let classify = |_: &cpi::Error| verdict.get();
        let result = retry(&what, self.backoff, classify, || async {
            verdict.set(Verdict::Fail);
            let auth = self.auth().await?;
            let url = format!("{}{}", self.endpoint(&auth, service)?, path);
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("X-Auth-Token", &auth.token);
            if service == Service::Compute {
                req = req.header("X-OpenStack-Nova-API-Version", NOVA_MICROVERSION);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // Refused before sending: nothing ran, a create may repeat.
                    if repeat == Repeat::Safe || e.is_connect() {
                        verdict.set(Verdict::Retry);
                    }
                    return Err(transport(&what, &e).into());
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(Some(resp));
            }
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if status == StatusCode::UNAUTHORIZED && !reauthed.get() {
                reauthed.set(true);
                *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = None;
                verdict.set(Verdict::RetryAfter(Duration::ZERO));
            } else if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::PAYLOAD_TOO_LARGE
            {
                verdict.set(Verdict::RetryAfter(retry_after(&resp)));
            } else if status.is_server_error() && repeat == Repeat::Safe {
                verdict.set(Verdict::Retry);
            }
            let text = resp.text().await.unwrap_or_default();
            Err(OsError::Status {
                what: what.clone(),
                status: status.as_u16(),
                message: cloud_message(&text),
            }
            .into())
        })
        .await;
        result.map_err(|e| {
            match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<OsError>()) {
                Some(OsError::Transport { .. }) | None => OsError::Transport {
                    what: what.clone(),
                    message: e.message().to_owned(),
                },
                Some(other) => other.clone(),
            }
        })
    }

    /// GET a JSON body; `None` when not found.
    pub async fn get<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
    ) -> Result<Option<T>, OsError> {
        match self
            .send(Method::GET, service, path, None, Repeat::Safe)
            .await?
        {
            Some(resp) => decode(path, resp).await.map(Some),
            None => Ok(None),
        }
    }

    /// A request with a JSON body and a JSON answer; not found is an error.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: &B,
        repeat: Repeat,
    ) -> Result<T, OsError> {
        let body = serde_json::to_value(body).map_err(|e| OsError::Setup(e.to_string()))?;
        match self
            .send(method.clone(), service, path, Some(&body), repeat)
            .await?
        {
            Some(resp) => decode(path, resp).await,
            None => Err(not_found(&method, path)),
        }
    }

    /// A request whose answer body does not matter; false when not found.
    pub async fn act(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: Option<&Value>,
    ) -> Result<bool, OsError> {
        Ok(self
            .send(method, service, path, body, Repeat::Safe)
            .await?
            .is_some())
    }

    /// Uploads a streamed body (the image upload), never retried: the
    /// stream cannot be replayed.
    pub async fn put_stream(
        &self,
        service: Service,
        path: &str,
        body: reqwest::Body,
    ) -> Result<(), OsError> {
        let what = format!("PUT {path}");
        let auth = self.auth().await?;
        let url = format!("{}{}", self.endpoint(&auth, service)?, path);
        let resp = self
            .http
            .put(&url)
            .header("X-Auth-Token", &auth.token)
            .header("Content-Type", "application/octet-stream")
            .timeout(Duration::from_secs(24 * 3600))
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&what, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(OsError::Status {
            what,
            status: status.as_u16(),
            message: cloud_message(&text),
        })
    }
}

pub fn not_found(method: &Method, path: &str) -> OsError {
    OsError::Status {
        what: format!("{method} {path}"),
        status: 404,
        message: "not found".into(),
    }
}

async fn decode<T: DeserializeOwned>(path: &str, resp: reqwest::Response) -> Result<T, OsError> {
    let bytes = resp.bytes().await.map_err(|e| transport(path, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| OsError::Decode {
        what: path.to_owned(),
        message: e.to_string(),
    })
}

/// A transport error without the URL (it may carry a query worth hiding).
fn transport(what: &str, e: &reqwest::Error) -> OsError {
    let mut message = e.to_string();
    if let Some(u) = e.url() {
        message = message.replace(u.as_str(), "the endpoint");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    OsError::Transport {
        what: what.to_owned(),
        message,
    }
}

fn transient_only(e: &cpi::Error) -> Verdict {
    if e.ok_to_retry() {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

/// `Retry-After` seconds, or Nova's `overLimit.retryAfter` lives in the body
/// we have not read; 3 s as the Ruby CPI when absent.
fn retry_after(resp: &reqwest::Response) -> Duration {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 60.0)))
        .unwrap_or(Duration::from_secs(3))
}
