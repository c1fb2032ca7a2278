//! Where a call's time goes, for `make bench`: with `BOSH_CPI_TIMINGS=1` in
//! the environment the runner records its phases (request read, config
//! load, cloud set-up, runtime start, the dispatched call, the response)
//! and every cloud request (each cloud's one HTTP send function wraps its
//! send in [`request`]; the AWS SDK's operations are seen through their
//! tracing spans), and writes one JSON line to stderr at exit:
//! `BOSH_CPI_TIMINGS {"method": …, "main_unix_ns": …, "phases": […], "requests": […]}`.
//! Off (the director never sets it), each hook is one relaxed atomic load.

use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub const ENV: &str = "BOSH_CPI_TIMINGS";
/// The prefix of the stderr line.
pub const PREFIX: &str = "BOSH_CPI_TIMINGS ";

static ON: AtomicBool = AtomicBool::new(false);

struct State {
    main: Instant,
    main_unix_ns: u128,
    method: String,
    phases: Vec<(&'static str, f64, f64)>,
    requests: Vec<(String, f64, f64)>,
}

fn state() -> &'static Mutex<Option<State>> {
    static S: OnceLock<Mutex<Option<State>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(None))
}

fn with<T>(f: impl FnOnce(&mut State) -> T) -> Option<T> {
    let mut s = state().lock().unwrap_or_else(|e| e.into_inner());
    s.as_mut().map(f)
}

/// Called first thing in `main` (by `serve`): reads the switch, notes the time.
pub fn init() {
    if std::env::var_os(ENV).is_some_and(|v| v == "1") {
        let main_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        *state().lock().unwrap_or_else(|e| e.into_inner()) = Some(State {
            main: Instant::now(),
            main_unix_ns,
            method: String::new(),
            phases: Vec::new(),
            requests: Vec::new(),
        });
        ON.store(true, Ordering::Relaxed);
    }
}

#[inline]
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

fn since_main(at: Instant) -> f64 {
    with(|s| at.saturating_duration_since(s.main).as_secs_f64() * 1e3).unwrap_or(0.0)
}

/// Runs `f` as the named phase.
pub fn phase<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let start = Instant::now();
    let out = f();
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let at = since_main(start);
    with(|s| s.phases.push((name, at, ms)));
    out
}

pub fn set_method(method: &str) {
    if enabled() {
        with(|s| s.method = method.to_owned());
    }
}

/// Records a request taking from `start` to now.
pub fn record_request(what: String, start: Instant) {
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let at = since_main(start);
    with(|s| s.requests.push((what, at, ms)));
}

/// Times one cloud request (`what` is its method and path, no query):
/// `cpi::timing::request(&what, req.send()).await`.
pub async fn request<F: Future>(what: &str, send: F) -> F::Output {
    if !enabled() {
        return send.await;
    }
    let start = Instant::now();
    let out = send.await;
    record_request(what.to_owned(), start);
    out
}

/// The waits' pauses (`cpi::wait`), recorded as the phase `sleep`.
pub async fn sleep(pause: std::time::Duration) {
    if !enabled() {
        return tokio::time::sleep(pause).await;
    }
    let start = Instant::now();
    tokio::time::sleep(pause).await;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let at = since_main(start);
    with(|s| s.phases.push(("sleep", at, ms)));
}

/// The JSON document of everything recorded.
pub fn report() -> Option<Value> {
    with(|s| {
        json!({
            "method": s.method,
            "main_unix_ns": s.main_unix_ns.to_string(),
            "total_ms": s.main.elapsed().as_secs_f64() * 1e3,
            "phases": s.phases.iter().map(|(n, at, ms)| json!({"name": n, "at_ms": at, "ms": ms})).collect::<Vec<_>>(),
            "requests": s.requests.iter().map(|(w, at, ms)| json!({"what": w, "at_ms": at, "ms": ms})).collect::<Vec<_>>(),
        })
    })
}

/// Writes the report line to stderr (at exit).
pub fn finish() {
    if let Some(doc) = report() {
        use std::io::Write;
        // One write: stderr is unbuffered, and a `Display` of the document
        // straight to it was a system call per token (~150 per report).
        let line = format!("{PREFIX}{doc}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// A tracing layer that records the AWS SDK's operations
/// (`EC2.DescribeInstances` spans) as requests, from creation to close.
pub(crate) struct SdkOperations;

struct Opened(Instant);

impl<S> tracing_subscriber::Layer<S> for SdkOperations
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if is_operation(attrs.metadata()) {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(Opened(Instant::now()));
            }
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(Opened(start)) = span.extensions().get::<Opened>() {
                record_request(span.name().to_owned(), *start);
            }
        }
    }
}

fn is_operation(m: &tracing::Metadata<'_>) -> bool {
    m.target().starts_with("aws_sdk_") && m.name().contains('.') && m.is_span()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_phases_and_requests_when_on() {
        // The switch is process-wide; this test owns it in this binary.
        std::env::set_var(ENV, "1");
        init();
        set_method("has_vm");
        let n = phase("config", || 2 + 2);
        assert_eq!(n, 4);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(request("GET /servers/1", async {}));
        let r = report().unwrap();
        assert_eq!(r["method"], "has_vm");
        assert_eq!(r["phases"][0]["name"], "config");
        assert_eq!(r["requests"][0]["what"], "GET /servers/1");
        assert!(r["total_ms"].as_f64().unwrap() >= 0.0);
    }
}
