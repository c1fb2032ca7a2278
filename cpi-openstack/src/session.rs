//! One authenticated session for the whole call: TLS, the token and catalog
//! (asked for in `keystone.rs`), and sending typed requests with the retry
//! rules below. Every request to OpenStack goes through here.
//!
//! Retries: reads, deletes and idempotent actions are retried on 5xx, 429,
//! 413, 503 and lost or cut answers; creates only on 429/413 (refused, so
//! nothing was made) and refused connections — after a 5xx or a lost answer
//! on a create, [`Session::create`] looks the resource up first. Throttling
//! is waited out to the deadline (`Verdict::ThrottledFor`), not counted as
//! attempts. A 401 re-authenticates once. The token is registered as a
//! secret.

use crate::config::OpenStackOptions;
use crate::error::{cloud_message, OsError};
use crate::keystone::Auth;
use bytes::{Bytes, BytesMut};
use cpi::wait::{retry, Backoff, Verdict};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::cell::Cell;
use std::sync::atomic::AtomicBool;
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
    /// Octavia.
    LoadBalancer,
}

impl Service {
    pub(crate) fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Compute => &["compute"],
            // Real clouds list Cinder as `volumev3`; newer ones also as `block-storage`.
            Service::Volume => &["volumev3", "block-storage"],
            Service::Image => &["image"],
            Service::Network => &["network"],
            Service::LoadBalancer => &["load-balancer"],
        }
    }
    /// Glance and Neutron list an unversioned root in the catalog.
    pub(crate) fn version_suffix(self) -> &'static str {
        match self {
            Service::Image => "/v2",
            Service::Network => "/v2.0",
            Service::LoadBalancer => "/v2",
            _ => "",
        }
    }
}

/// What [`Session::create_or_find`] got: the POST's answer, or what the
/// lookup found after an answer was lost.
pub enum Created<T, F> {
    Made(T),
    Found(F),
}

/// Whether a request may be repeated after an answer that may mean it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    Safe,
    /// A create: repeated only when the cloud said it did not run it.
    Create,
}

pub struct Session {
    pub(crate) http: cpi::http::Clients,
    pub(crate) opts: Arc<OpenStackOptions>,
    pub(crate) auth: Mutex<Option<Arc<Auth>>>,
    /// Set after a 401: the shared token cache is not read again.
    pub(crate) skip_cache: AtomicBool,
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
        let timeout = conn.timeout.unwrap_or(Duration::from_secs(60));
        let ca_files = ca_cert_path
            .map(|p| p.to_path_buf())
            .into_iter()
            .chain(conn.ca_file.map(Into::into));
        // CA files are read and parsed here, so that a bad one is a config
        // error before any request; the trust store is only loaded when a
        // request goes to an https endpoint (`cpi::http`).
        let mut extra_roots = Vec::new();
        for path in ca_files {
            let pem = std::fs::read(&path).map_err(|e| {
                OsError::Setup(format!("reading CA certificate {}: {e}", path.display()))
            })?;
            if pem.iter().all(u8::is_ascii_whitespace) {
                continue; // the job writes an empty file when no CA is set
            }
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| OsError::Setup(format!("CA certificate {}: {e}", path.display())))?;
            cpi::http::check_roots(&certs)
                .map_err(|e| OsError::Setup(format!("CA certificate {}: {e}", path.display())))?;
            extra_roots.extend(certs);
        }
        let verify = conn.ssl_verify_peer;
        let http = cpi::http::Clients::new("the OpenStack HTTP client", move |b| {
            let b = b
                .timeout(timeout)
                .connect_timeout(Duration::from_secs(10))
                .tls_certs_merge(extra_roots.clone());
            if verify {
                b
            } else {
                b.danger_accept_invalid_certs(true)
            }
        });
        Ok(Session {
            http,
            opts,
            auth: Mutex::new(None),
            skip_cache: AtomicBool::new(false),
            backoff: Backoff::api(),
        })
    }

    /// Sends one request; answers the body of a 2xx (read whole, capped at
    /// [`MAX_BODY`]), `None` for a 404, and errors carrying the cloud's
    /// message otherwise. A body cut short is a lost answer, retried like one.
    pub async fn send(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: Option<&Value>,
        repeat: Repeat,
    ) -> Result<Option<Bytes>, OsError> {
        let what = format!("{method} {path}");
        let verdict = Cell::new(Verdict::Fail);
        let reauthed = Cell::new(false);
        let throttled = Cell::new(0u32);
        let classify = |_: &cpi::Error| verdict.get();
        let result = retry(&what, self.backoff, classify, || async {
            verdict.set(Verdict::Fail);
            let auth = self.auth().await?;
            let url = format!("{}{}", self.endpoint(&auth, service)?, path);
            let mut req = self
                .http
                .request(method.clone(), &url)
                .map_err(|e| OsError::Setup(e.message().to_owned()))?
                .header("X-Auth-Token", &auth.token);
            if service == Service::Compute {
                req = req.header("X-OpenStack-Nova-API-Version", NOVA_MICROVERSION);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let answer = match cpi::timing::request(&what, req.send()).await {
                Ok(r) => read(&what, r).await,
                Err(e) => Err(transport(&what, &e)),
            };
            let (status, headers, bytes) = match answer {
                Ok(a) => a,
                Err(e) => {
                    // A create whose answer was lost may have run: the
                    // caller looks it up before sending it again.
                    if repeat == Repeat::Safe
                        || matches!(&e, OsError::Transport { refused: true, .. })
                    {
                        verdict.set(Verdict::Retry);
                    }
                    return Err(e.into());
                }
            };
            if status.is_success() {
                return Ok(Some(bytes));
            }
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&bytes);
            if status == StatusCode::UNAUTHORIZED && !reauthed.get() {
                reauthed.set(true);
                self.forget_token();
                verdict.set(Verdict::RetryAfter(Duration::ZERO));
            } else if is_throttle(status, repeat) {
                throttled.set(throttled.get() + 1);
                let hint = retry_after(&headers, &text);
                verdict.set(Verdict::ThrottledFor(throttle_pause(throttled.get(), hint)));
            } else if status.is_server_error() && repeat == Repeat::Safe {
                verdict.set(Verdict::Retry);
            }
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
                Some(OsError::Transport { refused, .. }) => OsError::Transport {
                    what: what.clone(),
                    message: e.message().to_owned(),
                    refused: *refused,
                },
                None => OsError::Transport {
                    what: what.clone(),
                    message: e.message().to_owned(),
                    refused: false,
                },
                Some(other) => other.clone(),
            }
        })
    }

    /// POSTs a create that must not be made twice. After an answer that
    /// may mean it ran (a 5xx, a lost or cut answer), `lookup` looks for it
    /// by the unique name or token the body carries, and only when it is not
    /// there is the POST sent again. Throttling (429) is waited out inside
    /// [`Session::send`]: the cloud refused it, so nothing was made.
    pub async fn create<T: DeserializeOwned>(
        &self,
        service: Service,
        path: &str,
        body: &Value,
        lookup: impl AsyncFn() -> cpi::Result<Option<T>>,
    ) -> cpi::Result<T> {
        self.create_or_find(service, path, body, lookup)
            .await
            .map(|c| match c {
                Created::Made(t) | Created::Found(t) => t,
            })
    }

    /// [`Session::create`] where the lookup answers another type than the POST.
    pub async fn create_or_find<T: DeserializeOwned, F>(
        &self,
        service: Service,
        path: &str,
        body: &Value,
        lookup: impl AsyncFn() -> cpi::Result<Option<F>>,
    ) -> cpi::Result<Created<T, F>> {
        const TRIES: u32 = 4;
        let mut n = 0;
        loop {
            n += 1;
            match self
                .call::<_, T>(Method::POST, service, path, body, Repeat::Create)
                .await
            {
                Ok(made) => return Ok(Created::Made(made)),
                Err(e) if n < TRIES && maybe_made(&e) => {
                    tracing::warn!("{e}; looking it up before sending it again");
                    if let Some(found) = lookup().await? {
                        return Ok(Created::Found(found));
                    }
                    tokio::time::sleep(self.backoff.pause(n)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
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
            Some(bytes) => decode(path, &bytes).map(Some),
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
            Some(bytes) => decode(path, &bytes),
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
            .map_err(|e| OsError::Setup(e.message().to_owned()))?
            .header("X-Auth-Token", &auth.token)
            .header("Content-Type", "application/octet-stream")
            .timeout(Duration::from_secs(24 * 3600))
            .body(body)
            .send()
            .await
            .map_err(|e| transport(&what, &e))?;
        let (status, _, bytes) = read(&what, resp).await?;
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&bytes);
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

/// No answer this CPI reads is near this size; a bigger one is refused
/// rather than held in memory.
pub const MAX_BODY: usize = 16 << 20;

pub(crate) fn decode<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, OsError> {
    serde_json::from_slice(bytes).map_err(|e| OsError::Decode {
        what: path.to_owned(),
        message: e.to_string(),
    })
}

/// The whole answer, at most [`MAX_BODY`] bytes; a body cut short is a
/// transport error (the answer was lost), one too big a decode error.
pub(crate) async fn read(
    what: &str,
    mut resp: reqwest::Response,
) -> Result<(StatusCode, reqwest::header::HeaderMap, Bytes), OsError> {
    let too_big = || OsError::Decode {
        what: what.to_owned(),
        message: format!("the answer is over {} MiB", MAX_BODY >> 20),
    };
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_big());
    }
    let status = resp.status();
    let headers = std::mem::take(resp.headers_mut());
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(what, &e))? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(too_big());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((status, headers, buf.freeze()))
}

/// Throttling: 429 and 413 (Nova's `overLimit`) always, since the cloud
/// refused the request; 503 for requests that may be repeated (a create
/// answered 503 is looked up before it is sent again).
fn is_throttle(status: StatusCode, repeat: Repeat) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::PAYLOAD_TOO_LARGE
        || (status == StatusCode::SERVICE_UNAVAILABLE && repeat == Repeat::Safe)
}

/// The pause after the `k`th throttled answer to one request. The first two
/// are short and jittered (50 ms to 400 ms, never longer than the cloud's
/// `Retry-After`): most throttling is a busy moment that has passed by then,
/// and `Retry-After` comes in whole seconds. From the third on, the cloud is
/// limiting in earnest and its `Retry-After` is honoured in full, plus up to
/// a quarter of it in jitter so that many CPIs do not come back together.
pub(crate) fn throttle_pause(k: u32, hint: Option<Duration>) -> Duration {
    let base = Backoff::new(
        Duration::from_millis(100),
        Duration::from_secs(5),
        Duration::MAX,
    )
    .pause(k);
    let pause = match hint {
        Some(h) if k < 3 => base.min(h),
        Some(h) => h.max(base) + jitter(h / 4),
        None => base,
    };
    pause.min(Duration::from_secs(60))
}

fn jitter(up_to: Duration) -> Duration {
    use rand::Rng;
    Duration::from_millis(rand::rng().random_range(0..=up_to.as_millis() as u64))
}

/// A 5xx or a lost answer: the create may have happened.
pub fn maybe_made(e: &OsError) -> bool {
    match e {
        OsError::Status { status, .. } => *status >= 500,
        OsError::Transport { refused, .. } => !refused,
        _ => false,
    }
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
        refused: e.is_connect(),
    }
}

/// `Retry-After` seconds, else Nova's `overLimit.retryAfter` in the body.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap, body: &str) -> Option<Duration> {
    let secs = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .or_else(|| {
            let v: Value = serde_json::from_str(body).ok()?;
            let inner = v.as_object()?.values().find_map(|o| o.get("retryAfter"))?;
            inner
                .as_f64()
                .or_else(|| inner.as_str().and_then(|s| s.trim().parse().ok()))
        })?;
    secs.is_finite()
        .then(|| Duration::from_secs_f64(secs.clamp(0.0, 60.0)))
}
