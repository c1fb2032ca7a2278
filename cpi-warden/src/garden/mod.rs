//! A Garden client: the routes the warden CPI uses, over tcp or a unix
//! socket, including the hijacked process stream (`processes.rs`).

pub mod error;
pub mod http;
pub mod processes;
pub mod types;

pub use error::GardenError;
pub use http::Endpoint;
pub use processes::{ProcessResult, ProcessSpec, Wait};
pub use types::{BindMount, ContainerInfo, ContainerSpec};

use cpi::wait::{retry, Backoff, Verdict};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long one request may take, start to end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Garden {
    endpoint: Endpoint,
    backoff: Backoff,
}

/// Retries transient failures (a dropped connection, an untyped 5xx);
/// throttling (503, a refused connection) until the deadline.
fn verdict(e: &cpi::Error) -> Verdict {
    let garden = std::error::Error::source(e).and_then(|s| s.downcast_ref::<GardenError>());
    if garden.is_some_and(GardenError::throttled) {
        Verdict::Throttled
    } else if e.ok_to_retry() {
        Verdict::Retry
    } else {
        Verdict::Fail
    }
}

impl Garden {
    pub fn new(endpoint: Endpoint) -> Self {
        Garden {
            endpoint,
            // Six attempts for failures that may be real; throttling is
            // bounded by the 30 s alone (six unlucky 503s in a row failed a
            // create_vm that the next second would have served).
            backoff: Backoff::new(
                Duration::from_millis(50),
                Duration::from_secs(2),
                Duration::from_secs(30),
            )
            .attempts(6),
        }
    }

    /// The same client with another retry budget (tests use a short one).
    pub fn with_backoff(self, backoff: Backoff) -> Self {
        Garden { backoff, ..self }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// One request, no retry: the answer's status and body, or a typed error.
    async fn once(
        &self,
        method: &str,
        target: &str,
        ctype: &str,
        body: &[u8],
        what: &str,
    ) -> Result<Vec<u8>, GardenError> {
        let fut = async {
            let mut conn = http::connect(&self.endpoint, what).await?;
            http::send(&mut conn, method, target, ctype, body, what).await?;
            let head = http::read_head(&mut conn, what).await?;
            let body = http::read_body(&mut conn, &head, what).await?;
            if head.status >= 300 {
                return Err(error_from(what, head.status, &body));
            }
            Ok(body)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, cpi::timing::request(what, fut))
            .await
            .unwrap_or_else(|_| {
                Err(http::transport(
                    what,
                    format!("no answer within {REQUEST_TIMEOUT:?}"),
                ))
            })
    }

    /// A request retried while its failure is transient.
    pub async fn request(
        &self,
        method: &str,
        target: &str,
        ctype: &str,
        body: &[u8],
        what: &str,
    ) -> cpi::Result<Vec<u8>> {
        retry(what, self.backoff, verdict, || async {
            Ok(self.once(method, target, ctype, body, what).await?)
        })
        .await
    }

    async fn json(
        &self,
        method: &str,
        target: &str,
        body: Option<Value>,
        what: &str,
    ) -> cpi::Result<Value> {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let out = self
            .request(method, target, "application/json", &body, what)
            .await?;
        if out.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out).map_err(|e| {
            GardenError::Protocol {
                what: what.into(),
                message: format!("not JSON: {e}"),
            }
            .into()
        })
    }

    pub async fn ping(&self) -> cpi::Result<()> {
        self.json("GET", "/ping", None, "ping").await.map(|_| ())
    }

    pub async fn capacity(&self) -> cpi::Result<Value> {
        self.json("GET", "/capacity", None, "capacity").await
    }

    /// Creates a container. A retry after a lost answer may find the handle
    /// already taken by the first attempt: that is success.
    pub async fn create(&self, spec: &ContainerSpec) -> cpi::Result<String> {
        let what = format!("create container {}", spec.handle);
        let body = serde_json::to_vec(spec).map_err(|e| cpi::Error::cpi(e.to_string()))?;
        let mut attempt = 0;
        let out = retry(&what, self.backoff, verdict, || {
            attempt += 1;
            let first = attempt == 1;
            let (what, body) = (&what, &body);
            async move {
                match self
                    .once("POST", "/containers", "application/json", body, what)
                    .await
                {
                    Err(GardenError::Server { message, .. })
                        if !first && message.contains("already in use") =>
                    {
                        Ok(serde_json::to_vec(&json!({"Handle": spec.handle})).unwrap_or_default())
                    }
                    other => Ok(other?),
                }
            }
        })
        .await?;
        let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        Ok(get_ci(&v, "handle")
            .and_then(Value::as_str)
            .unwrap_or(&spec.handle)
            .to_owned())
    }

    /// Destroys a container; a missing one is `ContainerNotFound` (VMNotFound).
    pub async fn destroy(&self, handle: &str) -> cpi::Result<()> {
        self.json(
            "DELETE",
            &format!("/containers/{}", http::encode(handle)),
            None,
            &format!("destroy container {handle}"),
        )
        .await
        .map(|_| ())
    }

    /// Handles of containers whose properties match all of `filter`.
    pub async fn list(&self, filter: &BTreeMap<String, String>) -> cpi::Result<Vec<String>> {
        let q: Vec<String> = filter
            .iter()
            .map(|(k, v)| format!("{}={}", http::encode(k), http::encode(v)))
            .collect();
        let target = if q.is_empty() {
            "/containers".to_owned()
        } else {
            format!("/containers?{}", q.join("&"))
        };
        let v = self.json("GET", &target, None, "list containers").await?;
        Ok(get_ci(&v, "handles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn info(&self, handle: &str) -> cpi::Result<ContainerInfo> {
        let v = self
            .json(
                "GET",
                &format!("/containers/{}/info", http::encode(handle)),
                None,
                &format!("info of container {handle}"),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| {
            GardenError::Protocol {
                what: "container info".into(),
                message: e.to_string(),
            }
            .into()
        })
    }

    /// Info of several containers; a missing one is absent from the answer.
    pub async fn bulk_info(
        &self,
        handles: &[String],
    ) -> cpi::Result<BTreeMap<String, ContainerInfo>> {
        let target = format!(
            "/containers/bulk_info?handles={}",
            http::encode(&handles.join(","))
        );
        let v = self.json("GET", &target, None, "bulk info").await?;
        let mut out = BTreeMap::new();
        for (h, entry) in v.as_object().into_iter().flatten() {
            if get_ci(entry, "err").is_some_and(|e| !e.is_null()) {
                continue;
            }
            if let Some(info) =
                get_ci(entry, "info").and_then(|i| serde_json::from_value(i.clone()).ok())
            {
                out.insert(h.clone(), info);
            }
        }
        Ok(out)
    }

    pub async fn stop(&self, handle: &str, kill: bool) -> cpi::Result<()> {
        self.json(
            "POST",
            &format!("/containers/{}/stop", http::encode(handle)),
            Some(json!({"kill": kill})),
            "stop container",
        )
        .await
        .map(|_| ())
    }

    pub async fn set_property(&self, handle: &str, key: &str, value: &str) -> cpi::Result<()> {
        let target = format!(
            "/containers/{}/properties/{}",
            http::encode(handle),
            http::encode(key)
        );
        self.json(
            "PUT",
            &target,
            Some(json!({"value": value})),
            &format!("set property {key} on {handle}"),
        )
        .await
        .map(|_| ())
    }

    pub async fn property(&self, handle: &str, key: &str) -> cpi::Result<String> {
        let target = format!(
            "/containers/{}/properties/{}",
            http::encode(handle),
            http::encode(key)
        );
        let v = self.json("GET", &target, None, "get property").await?;
        Ok(get_ci(&v, "value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned())
    }

    /// Streams a tar into `destination` (a directory in the container).
    pub async fn stream_in(&self, handle: &str, destination: &str, tar: &[u8]) -> cpi::Result<()> {
        let target = format!(
            "/containers/{}/files?user=root&destination={}",
            http::encode(handle),
            http::encode(destination)
        );
        self.request(
            "PUT",
            &target,
            "application/x-tar",
            tar,
            &format!("stream in to {destination} in {handle}"),
        )
        .await
        .map(|_| ())
    }

    /// Streams `source` out of the container, as a tar.
    pub async fn stream_out(&self, handle: &str, source: &str) -> cpi::Result<Vec<u8>> {
        let target = format!(
            "/containers/{}/files?user=root&source={}",
            http::encode(handle),
            http::encode(source)
        );
        self.request(
            "GET",
            &target,
            "",
            &[],
            &format!("stream out {source} from {handle}"),
        )
        .await
    }

    /// Forwards a host port into the container. Not repeated blindly: a
    /// retry first looks for the mapping in the container's info (the first
    /// attempt may have made it and lost its answer).
    pub async fn net_in(
        &self,
        handle: &str,
        host_port: u32,
        container_port: u32,
    ) -> cpi::Result<(u32, u32)> {
        let target = format!("/containers/{}/net/in", http::encode(handle));
        let what = format!("net in {host_port}:{container_port} on {handle}");
        let body = json!({"host_port": host_port, "container_port": container_port}).to_string();
        let mut attempt = 0;
        let out = retry(&what, self.backoff, verdict, || {
            attempt += 1;
            let (what, target, body) = (&what, &target, &body);
            let first = attempt == 1;
            async move {
                if !first && host_port != 0 {
                    let info = self.info_once(handle).await?;
                    let want = types::PortMapping {
                        host_port,
                        container_port: if container_port == 0 { host_port } else { container_port },
                    };
                    if info.mapped_ports.contains(&want) {
                        return Ok(json!({"host_port": want.host_port, "container_port": want.container_port}).to_string().into_bytes());
                    }
                }
                Ok(self
                    .once("POST", target, "application/json", body.as_bytes(), what)
                    .await?)
            }
        })
        .await?;
        let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        let n = |k| get_ci(&v, k).and_then(Value::as_u64).unwrap_or(0) as u32;
        Ok((n("host_port"), n("container_port")))
    }

    /// One info request, no retry (for a retry's own look-up).
    async fn info_once(&self, handle: &str) -> Result<ContainerInfo, GardenError> {
        let what = format!("info of container {handle}");
        let body = self
            .once(
                "GET",
                &format!("/containers/{}/info", http::encode(handle)),
                "",
                &[],
                &what,
            )
            .await?;
        serde_json::from_slice(&body).map_err(|e| GardenError::Protocol {
            what,
            message: e.to_string(),
        })
    }

    /// Runs a process and waits for it, collecting its output; retried when
    /// the run could not start.
    pub async fn run(&self, handle: &str, spec: &ProcessSpec) -> cpi::Result<ProcessResult> {
        self.run_waiting(handle, spec, Wait::Output).await
    }

    /// Runs a process and waits for its exit status only: one connection,
    /// no output attached. For scripts whose status is the whole answer.
    pub async fn run_status(&self, handle: &str, spec: &ProcessSpec) -> cpi::Result<i32> {
        Ok(self
            .run_waiting(handle, spec, Wait::Status)
            .await?
            .exit_status)
    }

    /// Starts a process without attaching to its output or waiting for it.
    pub async fn spawn(&self, handle: &str, spec: &ProcessSpec) -> cpi::Result<String> {
        Ok(self
            .run_waiting(handle, spec, Wait::Started)
            .await?
            .process_id)
    }

    /// Starts a process under the process id `id` at most once: a retry first
    /// looks for `id` in the container's process ids (the first attempt may
    /// have started it and lost its answer).
    pub async fn spawn_once(&self, handle: &str, id: &str, spec: &ProcessSpec) -> cpi::Result<()> {
        let spec = ProcessSpec {
            id: id.to_owned(),
            ..spec.clone()
        };
        let what = format!("start {} ({id}) in {handle}", spec.path);
        let mut attempt = 0;
        retry(&what, self.backoff, verdict, || {
            attempt += 1;
            let first = attempt == 1;
            let (spec, what) = (&spec, &what);
            async move {
                if !first
                    && self
                        .info_once(handle)
                        .await?
                        .process_ids
                        .iter()
                        .any(|p| p == id)
                {
                    return Ok(());
                }
                match processes::run(&self.endpoint, handle, spec, Wait::Started, what).await {
                    // Garden refuses a second process with a running one's id.
                    Err(GardenError::Server { message, .. })
                        if !first && message.contains("already") =>
                    {
                        Ok(())
                    }
                    other => other.map(|_| ()).map_err(Into::into),
                }
            }
        })
        .await
    }

    async fn run_waiting(
        &self,
        handle: &str,
        spec: &ProcessSpec,
        wait: Wait,
    ) -> cpi::Result<ProcessResult> {
        let what = match wait {
            Wait::Started => format!("start {} in {handle}", spec.path),
            _ => format!("run {} in {handle}", spec.path),
        };
        retry(&what, self.backoff, verdict, || async {
            Ok(processes::run(&self.endpoint, handle, spec, wait, &what).await?)
        })
        .await
    }
}

/// A key of a Go-encoded object, case-insensitively.
pub fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Garden's error body (`{"Type", "Message", "Handle", …}`) as a typed error.
pub fn error_from(what: &str, status: u16, body: &[u8]) -> GardenError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let s = |k| {
        get_ci(&v, k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    // Bounded: a peer's message goes into errors and logs.
    let message: String = if v.is_null() {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(300)
            .collect()
    } else {
        s("message").chars().take(1000).collect()
    };
    match s("type").as_str() {
        "ContainerNotFoundError" => GardenError::ContainerNotFound {
            handle: s("handle"),
        },
        "ProcessNotFoundError" => GardenError::ProcessNotFound(s("processid")),
        kind => GardenError::Server {
            what: what.into(),
            status,
            kind: kind.into(),
            message,
        },
    }
}
