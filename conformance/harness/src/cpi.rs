//! Runs a CPI binary the way the director does: one process per call, a
//! scrubbed environment, one JSON request on stdin, exactly one JSON
//! response on stdout, exit 0. Every call is timed, bounded (a hung CPI fails
//! the check instead of hanging the suite) and kept in a transcript for the
//! hygiene checks.

use crate::environment::CpiCommand;
use serde_json::{json, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `error` of a response, as the director's schema requires it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub kind: String,
    pub message: String,
    pub ok_to_retry: bool,
}

/// A well-formed response.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub result: Value,
    pub error: Option<WireError>,
    pub log: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Why a call did not give a well-formed response: what the director would
/// report as a CPI crash or an invalid response.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    Spawn(String),
    /// The call ran past the harness's bound and was killed.
    Hung(Duration),
    /// The process exited with a non-zero status (or a signal).
    Exit {
        code: Option<i32>,
        stderr: String,
    },
    /// stdout was not exactly one JSON document of the response schema.
    BadResponse {
        problem: String,
        stdout: String,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Spawn(e) => write!(f, "could not start the CPI: {e}"),
            CallError::Hung(d) => write!(
                f,
                "the CPI did not answer within {:.0} s and was killed",
                d.as_secs_f64()
            ),
            CallError::Exit { code, stderr } => {
                write!(
                    f,
                    "the CPI exited with status {code:?} (a crash to the director); stderr: {}",
                    tail(stderr)
                )
            }
            CallError::BadResponse { problem, stdout } => {
                write!(f, "invalid response ({problem}); stdout: {}", tail(stdout))
            }
        }
    }
}

fn tail(s: &str) -> String {
    let s = s.trim();
    let start = s.char_indices().rev().nth(400).map(|(i, _)| i).unwrap_or(0);
    s[start..].replace('\n', " | ")
}

/// One call as it happened, for the hygiene checks and reports.
#[derive(Clone, Debug)]
pub struct CallRecord {
    pub method: String,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs one CPI binary. Cloning shares the transcript.
#[derive(Clone)]
pub struct Cpi {
    command: CpiCommand,
    /// The `api_version` sent in requests (the CPI's `info` caps it).
    pub api_version: u32,
    /// `context.vm.stemcell.api_version`.
    pub stemcell_api_version: u32,
    /// Calls running longer than this are killed and fail.
    pub bound: Duration,
    director_uuid: String,
    transcript: Arc<Mutex<Vec<CallRecord>>>,
    runtime: Arc<tokio::runtime::Runtime>,
    /// Spawn and wait without the async runtime (see [`Cpi::timed`]).
    direct: bool,
}

impl Cpi {
    pub fn new(command: CpiCommand, bound: Duration) -> Result<Cpi, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting a runtime for CPI calls: {e}"))?;
        Ok(Cpi {
            command,
            api_version: 2,
            stemcell_api_version: 2,
            bound,
            director_uuid: uuid::Uuid::new_v4().to_string(),
            transcript: Arc::default(),
            runtime: Arc::new(runtime),
            direct: false,
        })
    }

    /// The same CPI, its calls spawned and waited for by the calling thread
    /// with std's process API instead of the async runtime, for `bench`: the
    /// runtime's child reaping (a signal, a wake of the driver) and its
    /// unoptimised code in the harness's dev build added 0.2 to 1 ms to every
    /// timed call, which is the harness's cost, not the CPI's.
    pub fn timed(&self) -> Cpi {
        Cpi {
            direct: true,
            ..self.clone()
        }
    }

    pub fn command(&self) -> &CpiCommand {
        &self.command
    }

    /// The same CPI, calling with these versions.
    pub fn with_versions(&self, api_version: u32, stemcell_api_version: u32) -> Cpi {
        Cpi {
            api_version,
            stemcell_api_version,
            ..self.clone()
        }
    }

    /// The same CPI and transcript, run with other arguments (another
    /// config path), for the bad-config checks.
    pub fn with_args(&self, args: Vec<String>) -> Cpi {
        let mut c = self.clone();
        c.command.args = args;
        c
    }

    /// The same CPI run with `key=value` added to its environment.
    pub fn with_env(&self, key: &str, value: &str) -> Cpi {
        let mut c = self.clone();
        c.command.env.push((key.to_owned(), value.to_owned()));
        c
    }

    /// The request the director would send.
    pub fn request(&self, method: &str, arguments: Vec<Value>) -> Value {
        json!({
            "method": method,
            "arguments": arguments,
            "context": {
                "director_uuid": self.director_uuid,
                "request_id": format!("cpi-{}", rand_id()),
                "vm": {"stemcell": {"api_version": self.stemcell_api_version}},
            },
            "api_version": self.api_version,
        })
    }

    /// Calls `method` and validates the response.
    pub fn call(&self, method: &str, arguments: Vec<Value>) -> Result<Reply, CallError> {
        let body = self.request(method, arguments).to_string();
        self.call_raw(method, body.as_bytes())
    }

    /// Sends `stdin` as is (malformed requests) and validates the response.
    pub fn call_raw(&self, label: &str, stdin: &[u8]) -> Result<Reply, CallError> {
        let (out, elapsed) = if self.direct {
            run_process_direct(&self.command, stdin, self.bound)
        } else {
            let started = Instant::now();
            let out = self
                .runtime
                .block_on(run_process(&self.command, stdin, self.bound));
            (out, started.elapsed())
        };
        let (status, stdout, stderr) = match out {
            Ok(o) => o,
            Err(e) => {
                self.record(label, String::new(), String::new(), elapsed);
                return Err(e);
            }
        };
        self.record(label, stdout.clone(), stderr.clone(), elapsed);
        if status != Some(0) {
            return Err(CallError::Exit {
                code: status,
                stderr,
            });
        }
        let (result, error, log) =
            parse_response(&stdout).map_err(|problem| CallError::BadResponse {
                problem,
                stdout: stdout.clone(),
            })?;
        Ok(Reply {
            result,
            error,
            log,
            stderr,
            elapsed,
        })
    }

    fn record(&self, method: &str, stdout: String, stderr: String, elapsed: Duration) {
        self.transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(CallRecord {
                method: method.to_owned(),
                stdout,
                stderr,
                elapsed,
            });
    }

    /// Every call made so far through this CPI or its clones.
    pub fn transcript(&self) -> Vec<CallRecord> {
        self.transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn rand_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// The command as the director runs it: what the director leaves in a CPI's
/// environment, and nothing else; the three standard streams piped.
fn std_command(command: &CpiCommand) -> std::process::Command {
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(&command.binary);
    cmd.args(&command.args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("TMPDIR", std::env::temp_dir())
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

type Output = (Option<i32>, String, String);

fn output_of(out: std::process::Output) -> Output {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One call on the calling thread: spawn, write the request, read both
/// outputs to their end and reap (std polls the two pipes). The bound is
/// kept by a watchdog thread, started before the spawn, that kills the
/// child when the call outlives it. The time is from the spawn to the reap.
pub(crate) fn run_process_direct(
    command: &CpiCommand,
    stdin: &[u8],
    bound: Duration,
) -> (Result<Output, CallError>, Duration) {
    use std::io::Write;
    use std::sync::mpsc;
    let (pid_tx, pid_rx) = mpsc::channel::<u32>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let Ok(pid) = pid_rx.recv() else {
            return false;
        };
        match done_rx.recv_timeout(bound) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // SAFETY: a signal to the child this call spawned, which has
                // not been reaped (its waiter has not sent `done`).
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                true
            }
            _ => false,
        }
    });
    let mut cmd = std_command(command);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            drop(pid_tx);
            let _ = watchdog.join();
            let e = CallError::Spawn(format!("{}: {e}", command.binary.display()));
            return (Err(e), started.elapsed());
        }
    };
    let _ = pid_tx.send(child.id());
    if let Some(mut w) = child.stdin.take() {
        // A CPI may answer without reading its input (a bad config): a
        // closed pipe is not the harness's failure.
        let _ = w.write_all(stdin);
    }
    let out = child.wait_with_output();
    let elapsed = started.elapsed();
    let _ = done_tx.send(());
    let out = if watchdog.join().unwrap_or(false) {
        Err(CallError::Hung(bound))
    } else {
        out.map(output_of)
            .map_err(|e| CallError::Spawn(format!("waiting for {}: {e}", command.binary.display())))
    };
    (out, elapsed)
}

pub(crate) async fn run_process(
    command: &CpiCommand,
    stdin: &[u8],
    bound: Duration,
) -> Result<Output, CallError> {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::from(std_command(command));
    cmd.kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| CallError::Spawn(format!("{}: {e}", command.binary.display())))?;
    let mut input = child.stdin.take();
    let body = stdin.to_vec();
    let io = async move {
        if let Some(mut w) = input.take() {
            // A CPI may answer without reading its input (a bad config):
            // a closed pipe is not the harness's failure.
            let _ = w.write_all(&body).await;
            let _ = w.shutdown().await;
        }
        child.wait_with_output().await
    };
    match tokio::time::timeout(bound, io).await {
        Err(_) => Err(CallError::Hung(bound)),
        Ok(Err(e)) => Err(CallError::Spawn(format!(
            "waiting for {}: {e}",
            command.binary.display()
        ))),
        Ok(Ok(out)) => Ok(output_of(out)),
    }
}

/// Exactly one JSON document with `result`, `error` (null or all three of
/// `type`, `message`, `ok_to_retry`) and `log` (a string).
pub fn parse_response(stdout: &str) -> Result<(Value, Option<WireError>, String), String> {
    let mut docs = serde_json::Deserializer::from_str(stdout).into_iter::<Value>();
    let doc = match docs.next() {
        None => return Err("stdout is empty".into()),
        Some(Err(e)) => return Err(format!("stdout is not JSON: {e}")),
        Some(Ok(v)) => v,
    };
    match docs.next() {
        None => {}
        Some(_) => return Err("stdout holds more than one JSON document".into()),
    }
    let obj = doc.as_object().ok_or("the response is not a JSON object")?;
    if !obj.contains_key("result") {
        return Err("the response has no 'result'".into());
    }
    let log = match obj.get("log") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("'log' is not a string: {other}")),
        None => return Err("the response has no 'log'".into()),
    };
    let error = match obj.get("error") {
        None => return Err("the response has no 'error'".into()),
        Some(Value::Null) => None,
        Some(Value::Object(e)) => {
            let kind = e
                .get("type")
                .and_then(Value::as_str)
                .ok_or("error.type is missing or not a string")?;
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .ok_or("error.message is missing or not a string")?;
            let ok_to_retry = e
                .get("ok_to_retry")
                .and_then(Value::as_bool)
                .ok_or("error.ok_to_retry is missing or not a boolean")?;
            Some(WireError {
                kind: kind.to_owned(),
                message: message.to_owned(),
                ok_to_retry,
            })
        }
        Some(other) => return Err(format!("'error' is neither null nor an object: {other}")),
    };
    Ok((obj["result"].clone(), error, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_schema() {
        assert!(parse_response(r#"{"result":true,"error":null,"log":""}"#).is_ok());
        let (_, e, _) = parse_response(
            r#"{"result":null,"error":{"type":"Bosh::Clouds::CpiError","message":"m","ok_to_retry":false},"log":"x"}"#,
        )
        .unwrap();
        assert_eq!(e.unwrap().kind, "Bosh::Clouds::CpiError");
        for bad in [
            "",
            "not json",
            r#"{"result":1,"error":null,"log":""}{"result":1,"error":null,"log":""}"#,
            r#"{"result":1,"error":null,"log":null}"#,
            r#"{"result":1,"error":null}"#,
            r#"{"result":null,"error":{"type":"X","message":"m"},"log":""}"#,
        ] {
            assert!(parse_response(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hung_cpi_is_killed_at_the_bound() {
        let cpi = Cpi::new(
            CpiCommand {
                binary: "/bin/sleep".into(),
                args: vec!["30".into()],
                env: vec![],
            },
            Duration::from_millis(300),
        )
        .unwrap();
        // Both ways of running a call: the runtime's and bench's direct one.
        for cpi in [cpi.clone(), cpi.timed()] {
            let started = Instant::now();
            assert_eq!(
                cpi.call("info", vec![]),
                Err(CallError::Hung(Duration::from_millis(300)))
            );
            assert!(started.elapsed() < Duration::from_secs(10));
        }
    }

    #[test]
    fn the_environment_is_scrubbed() {
        let cpi = Cpi::new(
            CpiCommand {
                binary: "/bin/sh".into(),
                args: vec![
                    "-c".into(),
                    "env >&2; cat >/dev/null; echo '{\"result\":null,\"error\":null,\"log\":\"\"}'"
                        .into(),
                ],
                env: vec![("EXTRA".into(), "1".into())],
            },
            Duration::from_secs(10),
        )
        .unwrap();
        for cpi in [cpi.clone(), cpi.timed()] {
            let reply = cpi.call("info", vec![]).unwrap();
            let mut names: Vec<&str> = reply
                .stderr
                .lines()
                .filter_map(|l| l.split_once('=').map(|(k, _)| k))
                .filter(|k| !matches!(*k, "PWD" | "SHLVL" | "_"))
                .collect();
            names.sort();
            assert_eq!(names, ["EXTRA", "PATH", "TMPDIR"]);
            assert_eq!(reply.result, Value::Null);
        }
    }
}
