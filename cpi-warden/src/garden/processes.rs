//! Running a process, as real Garden does it: `POST …/processes` answers
//! 201 with a chunked header and then hijacks the connection, writing raw
//! NDJSON (never chunk-framed): first the process and stream ids, at the end
//! the exit status. Output comes on two more connections, one per stream,
//! which the server closes when the process ends.

use super::error::GardenError;
use super::http::{self, Conn, Endpoint};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// How long a process the CPI waits for may run.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// Garden's `ProcessSpec` (lowercase keys on the wire).
#[derive(Clone, Debug, Serialize)]
pub struct ProcessSpec {
    /// Garden's process id; empty lets Garden pick one.
    #[serde(rename = "id", skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub path: String,
    pub args: Vec<String>,
    pub user: String,
}

impl ProcessSpec {
    /// `bash -c SCRIPT` as root, as the Go warden CPI runs its scripts.
    pub fn script(script: &str) -> Self {
        ProcessSpec {
            id: String::new(),
            path: "bash".into(),
            args: vec!["-c".into(), script.into()],
            user: "root".into(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ProcessResult {
    pub process_id: String,
    pub exit_status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

fn protocol(what: &str, message: impl Into<String>) -> GardenError {
    GardenError::Protocol {
        what: what.into(),
        message: message.into(),
    }
}

/// The most one NDJSON payload line may hold.
const MAX_PAYLOAD: usize = 1024 * 1024;

/// Reads one NDJSON line off the raw connection (bounded).
async fn next_payload(conn: &mut Conn, what: &str) -> Result<Value, GardenError> {
    loop {
        let Some(line) = http::read_line_bounded(conn, MAX_PAYLOAD, what).await? else {
            return Err(http::transport(
                what,
                "process stream closed before the exit status",
            ));
        };
        if !line.trim().is_empty() {
            return serde_json::from_str(line.trim()).map_err(|e| {
                let shown: String = line.trim().chars().take(200).collect();
                protocol(what, format!("bad payload {shown:?}: {e}"))
            });
        }
    }
}

/// Opens one output stream and reads it to EOF.
async fn attach(
    ep: &Endpoint,
    handle: &str,
    pid: &str,
    sid: &str,
    which: &str,
    what: &str,
) -> Result<Vec<u8>, GardenError> {
    let mut conn = http::connect(ep, what).await?;
    let target = format!(
        "/containers/{}/processes/{}/attaches/{}/{which}",
        http::encode(handle),
        http::encode(pid),
        http::encode(sid)
    );
    http::send(&mut conn, "GET", &target, "", &[], what).await?;
    let head = http::read_head(&mut conn, what).await?;
    if head.status >= 300 {
        let body = http::read_body(&mut conn, &head, what)
            .await
            .unwrap_or_default();
        return Err(super::error_from(what, head.status, &body));
    }
    let mut out = Vec::new();
    http::read_to_end_bounded(&mut conn, &mut out, what).await?;
    Ok(out)
}

/// How much of a process the caller waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Attach to stdout and stderr (two more connections) and read the exit status.
    Output,
    /// Read the exit status only, on the run's own connection; no attaches
    /// (as the Go Garden client does for a `ProcessIO{}` run that is waited for).
    Status,
    /// Return once Garden has given the process id.
    Started,
}

/// Starts a process and waits for it as `wait` says.
pub async fn run(
    ep: &Endpoint,
    handle: &str,
    spec: &ProcessSpec,
    wait: Wait,
    what: &str,
) -> Result<ProcessResult, GardenError> {
    let fut = async {
        let mut conn = http::connect(ep, what).await?;
        let body = serde_json::to_vec(spec).map_err(|e| protocol(what, e.to_string()))?;
        http::send(
            &mut conn,
            "POST",
            &format!("/containers/{}/processes", http::encode(handle)),
            "application/json",
            &body,
            what,
        )
        .await?;
        let head = http::read_head(&mut conn, what).await?;
        if head.status >= 300 {
            let body = http::read_body(&mut conn, &head, what)
                .await
                .unwrap_or_default();
            return Err(super::error_from(what, head.status, &body));
        }
        // From here the connection is raw: no chunk framing, whatever the head says.
        let first = next_payload(&mut conn, what).await?;
        let text = |v: &Value, k: &str| {
            super::get_ci(v, k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let pid = text(&first, "process_id");
        let sid = text(&first, "stream_id");
        if pid.is_empty() {
            return Err(protocol(what, format!("no process_id in {first}")));
        }
        let mut result = ProcessResult {
            process_id: pid.clone(),
            ..Default::default()
        };
        match wait {
            Wait::Started => return Ok(result),
            Wait::Status => {}
            Wait::Output => {
                let (out, err) = tokio::join!(
                    attach(ep, handle, &pid, &sid, "stdout", what),
                    attach(ep, handle, &pid, &sid, "stderr", what)
                );
                result.stdout = out?;
                result.stderr = err?;
            }
        }
        loop {
            let p = next_payload(&mut conn, what).await?;
            if let Some(e) = super::get_ci(&p, "error").and_then(Value::as_str) {
                return Err(GardenError::Server {
                    what: what.into(),
                    status: 500,
                    kind: "ProcessError".into(),
                    message: e.into(),
                });
            }
            if let Some(code) = super::get_ci(&p, "exit_status").and_then(Value::as_i64) {
                result.exit_status = code as i32;
                return Ok(result);
            }
        }
    };
    tokio::time::timeout(RUN_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| {
            Err(http::transport(
                what,
                format!("process did not end within {RUN_TIMEOUT:?}"),
            ))
        })
}
