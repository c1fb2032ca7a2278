//! A fault-injecting HTTP proxy in front of moto, which has no fault
//! injection of its own: the CPI talks to moto through it, the inspector
//! directly. One request per connection (answers carry `Connection: close`),
//! which is all the SDK needs and keeps the proxy small.
//!
//! Three ways to fail requests: the harness's `Fault`s; rules aimed at one
//! action (`on`, `after`: "lose the answer of the next AttachVolume"),
//! for the fault sweeps' regression tests; and seeded random chaos for the
//! load mode (`harness::Chaos`). Every request is recorded for `served()`.

use harness::chaos::{ChaosDraws, Drawn, FromDraw};
use harness::{Chaos, ChaosCounts, Fault};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a rule (or a chaos draw) does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// HTTP 500 `InternalError` before moto sees the request.
    ServerError,
    /// EC2's own throttling: HTTP 503 `RequestLimitExceeded`, before moto
    /// sees the request (EBS direct: 429 `ThrottlingException`).
    Throttle,
    /// moto acts, then the connection is closed without an answer.
    LoseAnswer,
    /// moto acts, the head and part of the body go out, then the
    /// connection is closed.
    DropMidBody,
}

/// "The next `times` requests of `action`, after letting `skip` through,
/// suffer `effect`", optionally only once `armed_by` has been forwarded.
#[derive(Clone, Debug)]
struct Rule {
    action: String,
    armed_by: Option<String>,
    skip: u32,
    times: u32,
    effect: Effect,
}

/// The harness's seeded chaos draws, as the proxy's effects (its
/// throttling answer is EC2's, in `choose`).
impl FromDraw for Effect {
    fn from_draw(drawn: Drawn, _coin: bool) -> Effect {
        match drawn {
            Drawn::Throttle => Effect::Throttle,
            Drawn::ServerError => Effect::ServerError,
            Drawn::LostAnswer => Effect::LoseAnswer,
            Drawn::DropMidBody => Effect::DropMidBody,
        }
    }
}

#[derive(Default)]
struct Faults {
    transient_left: u32,
    persistent: bool,
    latency: Option<Duration>,
    drop_next: bool,
    /// Fail the request after the next RunInstances (the VM then exists).
    after_run_instances: bool,
    fail_next: bool,
    rules: Vec<Rule>,
    chaos: Option<ChaosDraws<Effect>>,
    /// Kept when chaos is turned off, for `chaos_counts`.
    last_counts: ChaosCounts,
    /// Every request: its action and the time moto (or the proxy) took.
    served: Vec<(String, Duration)>,
    /// What the rules did: (action, effect), in order.
    acted: Vec<(String, Effect)>,
}

pub struct FaultProxy {
    pub port: u16,
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> Result<FaultProxy, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("fault proxy: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (faults.clone(), stop.clone());
        std::thread::Builder::new()
            .name("moto-fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let f = f.clone();
                        std::thread::spawn(move || {
                            let _ = handle(conn, upstream_port, &f);
                        });
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(FaultProxy { port, faults, stop })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn inject(&self, fault: Fault) -> bool {
        let mut f = self.lock();
        match fault {
            Fault::CreateVmAfterVmExists => f.after_run_instances = true,
            Fault::Transient { times } => f.transient_left = times,
            Fault::Persistent => f.persistent = true,
            Fault::Latency(d) => f.latency = Some(d),
            Fault::DropConnection => f.drop_next = true,
        }
        true
    }

    /// The next `times` requests of EC2 `action` (`AttachVolume`; EBS
    /// direct ones as `ebs:StartSnapshot`, load balancer ones as
    /// `elb:RegisterInstancesWithLoadBalancer`, `elbv2:RegisterTargets`)
    /// suffer `effect`.
    pub fn on(&self, action: &str, effect: Effect, times: u32) {
        self.rule(action, None, 0, times, effect)
    }

    /// As `on`, but only once a request of `trigger` has been forwarded.
    pub fn after(&self, trigger: &str, action: &str, effect: Effect, times: u32) {
        self.rule(action, Some(trigger), 0, times, effect)
    }

    /// As `on`, letting the first `skip` requests of `action` through.
    pub fn on_nth(&self, action: &str, skip: u32, effect: Effect, times: u32) {
        self.rule(action, None, skip, times, effect)
    }

    fn rule(&self, action: &str, trigger: Option<&str>, skip: u32, times: u32, effect: Effect) {
        self.lock().rules.push(Rule {
            action: action.to_owned(),
            armed_by: trigger.map(str::to_owned),
            skip,
            times,
            effect,
        });
    }

    /// What the rules did since the last `clear`: (action, effect).
    pub fn acted(&self) -> Vec<(String, Effect)> {
        self.lock().acted.clone()
    }

    /// The actions of every request since the last `reset_served`.
    pub fn actions(&self) -> Vec<String> {
        self.lock().served.iter().map(|(a, _)| a.clone()).collect()
    }

    pub fn served(&self) -> Vec<(String, Duration)> {
        self.lock().served.clone()
    }

    pub fn reset_served(&self) {
        self.lock().served.clear();
    }

    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        let mut f = self.lock();
        if let Some(old) = f.chaos.take() {
            f.last_counts = old.counts;
        }
        f.chaos = chaos.map(ChaosDraws::new);
    }

    pub fn chaos_counts(&self) -> ChaosCounts {
        let f = self.lock();
        match &f.chaos {
            Some(c) => c.counts.clone(),
            None => f.last_counts.clone(),
        }
    }

    /// Ends every fault and rule (chaos is apart: `set_chaos(None)`).
    pub fn clear(&self) {
        let mut f = self.lock();
        let chaos = f.chaos.take();
        let last = std::mem::take(&mut f.last_counts);
        let served = std::mem::take(&mut f.served);
        *f = Faults::default();
        f.chaos = chaos;
        f.last_counts = last;
        f.served = served;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What to do with one request.
enum Act {
    Forward,
    Answer(u16, &'static str, &'static str),
    Drop,
    /// Forward, then cut the answer.
    ForwardThen(Effect),
}

/// The request's action: EC2's `Action=` form field (classic ELB's and
/// ELBv2's as `elb:X` and `elbv2:X`, told apart by their API `Version=` as
/// moto tells them), or the EBS direct API's operation from its method and
/// path.
fn action_of(head: &[u8], body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| {
        text.split('&')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .map(str::to_owned)
    };
    if let Some(action) = field("Action") {
        return match field("Version").as_deref() {
            Some(ELB_VERSION) => format!("elb:{action}"),
            Some(ELBV2_VERSION) => format!("elbv2:{action}"),
            _ => action,
        };
    }
    let line = String::from_utf8_lossy(head);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let op = match (method, segs.as_slice()) {
        ("POST", ["snapshots"]) => "StartSnapshot",
        ("PUT", ["snapshots", _, "blocks", _]) => "PutSnapshotBlock",
        ("POST", ["snapshots", "completion", _]) => "CompleteSnapshot",
        ("GET", ["snapshots", _, "blocks"]) => "ListSnapshotBlocks",
        _ => return format!("http:{method} {path}"),
    };
    format!("ebs:{op}")
}

/// The API versions of classic ELB and ELBv2 (one endpoint, as on AWS).
const ELB_VERSION: &str = "2012-06-01";
const ELBV2_VERSION: &str = "2015-12-01";

fn is_ebs(action: &str) -> bool {
    action.starts_with("ebs:")
}

fn is_elb(action: &str) -> bool {
    action.starts_with("elb:") || action.starts_with("elbv2:")
}

fn choose(f: &mut Faults, action: &str) -> Act {
    if f.drop_next {
        f.drop_next = false;
        return Act::Drop;
    }
    if f.persistent {
        return Act::Answer(500, "InternalError", "injected persistent failure");
    }
    if f.transient_left > 0 {
        f.transient_left -= 1;
        return Act::Answer(503, "RequestLimitExceeded", "injected throttling");
    }
    if f.fail_next {
        f.fail_next = false;
        return Act::Answer(
            400,
            "InvalidParameterValue",
            "injected failure after RunInstances",
        );
    }
    if action == "RunInstances" && f.after_run_instances {
        f.after_run_instances = false;
        f.fail_next = true;
    }
    let mut hit = None;
    for (i, r) in f.rules.iter_mut().enumerate() {
        if r.action == action && r.armed_by.is_none() && r.times > 0 {
            if r.skip > 0 {
                r.skip -= 1;
            } else {
                hit = Some(i);
                break;
            }
        }
    }
    let hit = hit.map(|i| &mut f.rules[i]);
    let effect = hit.map(|r| {
        r.times -= 1;
        r.effect
    });
    // A forwarded trigger arms the rules waiting on it.
    for r in f.rules.iter_mut() {
        if effect.is_none() && r.armed_by.as_deref() == Some(action) {
            r.armed_by = None;
        }
    }
    let effect = match effect {
        Some(e) => {
            f.acted.push((action.to_owned(), e));
            Some(e)
        }
        None => f.chaos.as_mut().and_then(ChaosDraws::draw),
    };
    match effect {
        None => Act::Forward,
        Some(Effect::ServerError) => Act::Answer(500, "InternalError", "injected server error"),
        Some(Effect::Throttle) => {
            Act::Answer(503, "RequestLimitExceeded", "Request limit exceeded.")
        }
        Some(e) => Act::ForwardThen(e),
    }
}

fn handle(client: TcpStream, upstream_port: u16, faults: &Mutex<Faults>) -> std::io::Result<()> {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let started = Instant::now();
    let action = action_of(&head, &body);

    let (act, latency) = {
        let mut f = faults.lock().unwrap_or_else(|e| e.into_inner());
        (choose(&mut f, &action), f.latency)
    };
    if let Some(d) = latency {
        std::thread::sleep(d);
    }
    let mut client = client;
    // Recorded before the answer goes out, so that a caller that has its
    // answer finds the request in `served()`.
    let record = |faults: &Mutex<Faults>| {
        faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .served
            .push((format!("ec2:{action}"), started.elapsed()));
    };
    let result = match act {
        Act::Drop => {
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Act::Answer(status, code, message) => {
            answer_error(&mut client, &action, status, code, message)
        }
        Act::Forward | Act::ForwardThen(_) => {
            let mut up = TcpStream::connect(("127.0.0.1", upstream_port))?;
            up.write_all(&head)?;
            up.write_all(&body)?;
            up.flush()?;
            let mut answer = Vec::new();
            up.read_to_end(&mut answer)?;
            record(faults);
            match act {
                Act::ForwardThen(Effect::LoseAnswer) => {
                    let _ = client.shutdown(Shutdown::Both);
                    Ok(())
                }
                Act::ForwardThen(_) => {
                    let body_at = answer
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map(|p| p + 4)
                        .unwrap_or(0);
                    let cut = body_at + (answer.len() - body_at) / 2;
                    let _ = client.write_all(&answer[..cut.max(body_at)]);
                    let _ = client.flush();
                    let _ = client.shutdown(Shutdown::Both);
                    Ok(())
                }
                _ => {
                    client.write_all(&answer)?;
                    client.flush()
                }
            }
        }
    };
    result
}

/// An error in the service's own shape: EC2's XML, the ELB APIs' query
/// `ErrorResponse`, or the EBS direct API's JSON with its error type header.
fn answer_error(
    client: &mut TcpStream,
    action: &str,
    status: u16,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    let (status, reason, content_type, extra, body) = if is_ebs(action) {
        let (status, code) = if code == "RequestLimitExceeded" {
            (429, "ThrottlingException")
        } else {
            (status, "InternalServerException")
        };
        (
            status,
            "Error",
            "application/json",
            format!("x-amzn-ErrorType: {code}\r\n"),
            format!("{{\"message\":\"{message}\"}}"),
        )
    } else if is_elb(action) {
        // ELB throttles with 400 `Throttling`; its server errors are
        // `InternalFailure` / `ServiceUnavailable`.
        let (status, code, kind) = match code {
            "RequestLimitExceeded" => (400, "Throttling", "Sender"),
            "InternalError" => (status, "InternalFailure", "Receiver"),
            c => (status, c, if status < 500 { "Sender" } else { "Receiver" }),
        };
        (
            status,
            if status == 400 { "Bad Request" } else { "Error" },
            "text/xml",
            String::new(),
            format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>\
                 </Error><RequestId>injected</RequestId></ErrorResponse>"
            ),
        )
    } else {
        (
            status,
            if status == 400 { "Bad Request" } else { "Error" },
            "text/xml",
            String::new(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>\
                 <Message>{message}</Message></Error></Errors><RequestID>injected</RequestID></Response>"
            ),
        )
    };
    write!(
        client,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    client.flush()
}
