//! One authenticated session for the whole call: TLS, the token and catalog
//! (asked for in `keystone.rs`), and sending typed requests with the retry
//! rules below. Every request to OpenStack goes through here.
//!
//! Retries: reads, deletes and idempotent actions are retried on 5xx, 429,
//! 413 and lost connections; creates only on 429/413 (refused, so nothing was
//! made) — after a 5xx on a create the caller looks the resource up first.
//! A 401 re-authenticates once. The token is registered as a secret.

use crate::config::OpenStackOptions;
use crate::error::{cloud_message, OsError};
use crate::keystone::Auth;
use cpi::wait::{retry, Backoff, Verdict};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
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
    pub(crate) fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Compute => &["compute"],
            // Real clouds list Cinder as `volumev3`; newer ones also as `block-storage`.
            Service::Volume => &["volumev3", "block-storage"],
            Service::Image => &["image"],
            Service::Network => &["network"],
        }
    }
    /// Glance and Neutron list an unversioned root in the catalog.
    pub(crate) fn version_suffix(self) -> &'static str {
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

pub struct Session {
    pub(crate) http: reqwest::Client,
    pub(crate) opts: Arc<OpenStackOptions>,
    pub(crate) auth: Mutex<Option<Arc<Auth>>>,
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
            let resp = match cpi::timing::request(&what, req.send()).await {
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
pub(crate) fn transport(what: &str, e: &reqwest::Error) -> OsError {
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

pub(crate) fn transient_only(e: &cpi::Error) -> Verdict {
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
