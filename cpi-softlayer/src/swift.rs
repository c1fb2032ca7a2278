//! SoftLayer object storage (OpenStack Swift), as much as image import
//! needs: v1 auth (`X-Auth-User`/`X-Auth-Key` → token and storage URL, the
//! token registered as a secret), containers, streamed segment uploads and
//! a dynamic large object manifest (`X-Object-Manifest`), listing and
//! deletion. Calls without a streamed body are retried when transient.

use crate::config::{SwiftConfig, Waits};
use cpi::wait::{self, Verdict};
use cpi::{Classify, Error, ErrorKind};
use reqwest::{Method, StatusCode};
use std::cell::RefCell;

#[derive(Debug, thiserror::Error)]
pub enum SwiftError {
    #[error("object storage {op}: HTTP {status}: {body}")]
    Http {
        op: String,
        status: u16,
        body: String,
    },
    #[error("object storage {op}: {message}")]
    Transport { op: String, message: String },
    #[error("object storage {op}: {message}")]
    Answer { op: String, message: String },
    /// Nothing was sent: no HTTP client for the endpoint (for https, no CA
    /// certificates to trust).
    #[error("object storage {op}: {message}")]
    Setup { op: String, message: String },
}

impl SwiftError {
    fn transient(&self) -> bool {
        match self {
            SwiftError::Http { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            SwiftError::Transport { .. } => true,
            SwiftError::Answer { .. } | SwiftError::Setup { .. } => false,
        }
    }
}

impl Classify for SwiftError {
    fn kind(&self) -> ErrorKind {
        match self {
            SwiftError::Setup { .. } => ErrorKind::Cpi,
            _ => ErrorKind::Cloud,
        }
    }
    fn ok_to_retry(&self) -> bool {
        self.transient()
    }
}

struct Session {
    token: String,
    storage_url: String,
}

pub struct Swift {
    http: cpi::http::Clients,
    config: SwiftConfig,
    waits: Waits,
    session: tokio::sync::OnceCell<Session>,
}

/// An object name in a URL path: each `/`-separated part percent-encoded.
fn path_of(container: &str, object: Option<&str>) -> String {
    let enc = |s: &str| url_encode(s);
    match object {
        Some(o) => format!(
            "{}/{}",
            enc(container),
            o.split('/').map(enc).collect::<Vec<_>>().join("/")
        ),
        None => enc(container),
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn transport(op: &str, e: reqwest::Error) -> SwiftError {
    SwiftError::Transport {
        op: op.to_owned(),
        // Without the URL: it names the account.
        message: e.without_url().to_string(),
    }
}

async fn check(op: &str, resp: reqwest::Response) -> Result<reqwest::Response, SwiftError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Err(SwiftError::Http {
        op: op.to_owned(),
        status,
        body: body.chars().take(300).collect(),
    })
}

impl Swift {
    pub fn new(config: SwiftConfig, waits: Waits) -> Result<Swift, Error> {
        let request = waits.request;
        let http = cpi::http::Clients::new("the object storage HTTP client", move |b| {
            b.connect_timeout(request.min(std::time::Duration::from_secs(30)))
                // No whole-request timeout: a segment of a large image takes
                // as long as it takes; reads stall-checked by the read timeout.
                .read_timeout(request)
                .user_agent(concat!("cpi-softlayer/", env!("CARGO_PKG_VERSION")))
        });
        Ok(Swift {
            http,
            config,
            waits,
            session: tokio::sync::OnceCell::new(),
        })
    }

    /// The client for `url`'s scheme (TLS set up on the first https request).
    fn client(&self, op: &str, url: &str) -> Result<&reqwest::Client, SwiftError> {
        self.http.for_url(url).map_err(|e| SwiftError::Setup {
            op: op.to_owned(),
            message: e.message().to_owned(),
        })
    }

    pub fn account(&self) -> &str {
        &self.config.account
    }

    pub fn segment_size(&self) -> u64 {
        self.config.segment_size
    }

    async fn session(&self) -> Result<&Session, Error> {
        self.session
            .get_or_try_init(|| self.retrying("auth", || self.auth()))
            .await
    }

    async fn auth(&self) -> Result<Session, SwiftError> {
        let op = "auth";
        let resp = self
            .client(op, &self.config.auth_url)?
            .get(&self.config.auth_url)
            .header("X-Auth-User", &self.config.username)
            .header("X-Auth-Key", self.config.key.expose())
            .timeout(self.waits.request)
            .send()
            .await
            .map_err(|e| transport(op, e))?;
        let resp = check(op, resp).await?;
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let token = header("x-auth-token")
            .or_else(|| header("x-storage-token"))
            .ok_or_else(|| SwiftError::Answer {
                op: op.into(),
                message: "no X-Auth-Token in the answer".into(),
            })?;
        cpi::secret::register(&token);
        let storage_url = header("x-storage-url").ok_or_else(|| SwiftError::Answer {
            op: op.into(),
            message: "no X-Storage-Url in the answer".into(),
        })?;
        Ok(Session {
            token,
            storage_url: storage_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Runs `attempt` again while it fails transiently, within `api_retry`.
    async fn retrying<T, F, Fut>(&self, op: &str, attempt: F) -> Result<T, Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SwiftError>>,
    {
        let last: RefCell<Option<bool>> = RefCell::new(None);
        wait::retry(
            format!("object storage {op}"),
            self.waits.api(),
            |_: &Error| match *last.borrow() {
                Some(true) => Verdict::Retry,
                _ => Verdict::Fail,
            },
            || async {
                attempt().await.map_err(|e| {
                    *last.borrow_mut() = Some(e.transient());
                    Error::from(e)
                })
            },
        )
        .await
    }

    /// One request without a body worth streaming, retried when transient.
    async fn simple(
        &self,
        op: &str,
        method: Method,
        container: &str,
        object: Option<&str>,
        headers: &[(&str, String)],
        query: &[(&str, &str)],
    ) -> Result<Option<reqwest::Response>, Error> {
        let session = self.session().await?;
        let url = format!("{}/{}", session.storage_url, path_of(container, object));
        let missing_ok = method == Method::DELETE;
        self.retrying(op, || async {
            let mut req = self
                .client(op, &url)?
                .request(method.clone(), &url)
                .header("X-Auth-Token", &session.token)
                .timeout(self.waits.request)
                .query(query);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if method == Method::PUT {
                req = req.body(Vec::<u8>::new());
            }
            let resp = req.send().await.map_err(|e| transport(op, e))?;
            if missing_ok && resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            check(op, resp).await.map(Some)
        })
        .await
    }

    pub async fn put_container(&self, container: &str) -> Result<(), Error> {
        self.simple(
            "creating a container",
            Method::PUT,
            container,
            None,
            &[],
            &[],
        )
        .await
        .map(drop)
    }

    /// Uploads one object from a streamed body (not retried: the stream
    /// cannot be replayed).
    pub async fn put_streamed(
        &self,
        container: &str,
        object: &str,
        body: reqwest::Body,
    ) -> Result<(), Error> {
        let op = "uploading a segment";
        let session = self.session().await?;
        let url = format!(
            "{}/{}",
            session.storage_url,
            path_of(container, Some(object))
        );
        let resp = self
            .client(op, &url)?
            .put(&url)
            .header("X-Auth-Token", &session.token)
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .map_err(|e| transport(op, e))?;
        check(op, resp).await?;
        Ok(())
    }

    /// The zero-byte manifest joining every object under `prefix` of
    /// `container` into one (a dynamic large object).
    pub async fn put_manifest(
        &self,
        container: &str,
        object: &str,
        prefix: &str,
    ) -> Result<(), Error> {
        let manifest = format!("{container}/{prefix}");
        self.simple(
            "writing the large object manifest",
            Method::PUT,
            container,
            Some(object),
            &[("X-Object-Manifest", manifest)],
            &[],
        )
        .await
        .map(drop)
    }

    /// Object names in a container; a missing container holds none.
    pub async fn list(&self, container: &str) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct Entry {
            name: String,
        }
        let session = self.session().await?;
        let url = format!("{}/{}", session.storage_url, path_of(container, None));
        let op = "listing a container";
        self.retrying(op, || async {
            let resp = self
                .client(op, &url)?
                .get(&url)
                .header("X-Auth-Token", &session.token)
                .timeout(self.waits.request)
                .query(&[("format", "json")])
                .send()
                .await
                .map_err(|e| transport(op, e))?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(Vec::new());
            }
            let resp = check(op, resp).await?;
            let entries: Vec<Entry> = resp.json().await.map_err(|e| SwiftError::Answer {
                op: op.into(),
                message: e.without_url().to_string(),
            })?;
            Ok(entries.into_iter().map(|e| e.name).collect())
        })
        .await
    }

    /// Deletes every object of a container, then the container; what is
    /// already gone is fine.
    pub async fn remove_container(&self, container: &str) -> Result<(), Error> {
        for name in self.list(container).await? {
            self.simple(
                "deleting an object",
                Method::DELETE,
                container,
                Some(&name),
                &[],
                &[],
            )
            .await?;
        }
        self.simple(
            "deleting a container",
            Method::DELETE,
            container,
            None,
            &[],
            &[],
        )
        .await
        .map(drop)
    }
}
