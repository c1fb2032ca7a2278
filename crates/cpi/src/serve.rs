//! The runner: argv and stdin in, exactly one JSON response out, exit 0.
//! A cloud never touches stdin, stdout, exit codes or panics.

use crate::cloud::Cloud;
use crate::context::CallContext;
use crate::log::LogSink;
use crate::wire::{Request, Response};
use crate::{config, dispatch, secret, timing, Error, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

/// How the binary was started, in any form today's jobs render.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Run {
        config: Option<PathBuf>,
        ca_cert: Option<PathBuf>,
    },
    Help,
    Version,
}

impl Invocation {
    /// Accepts `PATH [CACERT]` (Ruby jobs), `-configPath=PATH`,
    /// `-configFile=PATH`, `-caCert=PATH` (Go jobs, also as two words) and
    /// `--config PATH`, `--ca-cert PATH`.
    pub fn parse(args: &[String]) -> Result<Invocation> {
        let mut config = None;
        let mut ca_cert = None;
        let mut positional = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if !arg.starts_with('-') || arg == "-" {
                positional.push(PathBuf::from(arg));
                continue;
            }
            let bare = arg.trim_start_matches('-');
            let (flag, inline) = match bare.split_once('=') {
                Some((f, v)) => (f, Some(v.to_owned())),
                None => (bare, None),
            };
            let slot = match flag {
                "h" | "help" => return Ok(Invocation::Help),
                "v" | "version" => return Ok(Invocation::Version),
                "configPath" | "configFile" | "config" | "config-path" | "config-file" => {
                    &mut config
                }
                "caCert" | "ca-cert" | "ca_cert" => &mut ca_cert,
                other => return Err(Error::cpi(format!("unknown flag '-{other}' (see --help)"))),
            };
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| Error::cpi(format!("flag '{arg}' needs a value")))?;
                    i += 1;
                    v.clone()
                }
            };
            *slot = Some(PathBuf::from(value));
        }
        let mut positional = positional.into_iter();
        if config.is_none() {
            config = positional.next();
        }
        if ca_cert.is_none() {
            ca_cert = positional.next();
        }
        if let Some(extra) = positional.next() {
            return Err(Error::cpi(format!(
                "unexpected argument '{}' (see --help)",
                extra.display()
            )));
        }
        Ok(Invocation::Run { config, ca_cert })
    }
}

fn usage(name: &str) -> String {
    format!(
        "{name} {version}: a BOSH external CPI.\n\n\
         Usage: {name} CONFIG_PATH [CA_CERT_PATH] < request.json\n       \
         {name} -configPath=CONFIG_PATH | -configFile=CONFIG_PATH [-caCert=CA_CERT_PATH]\n       \
         {name} --config CONFIG_PATH\n\n\
         Reads one JSON request ({{\"method\", \"arguments\", \"context\", \"api_version\"}}) on\n\
         stdin and writes one JSON response ({{\"result\", \"error\", \"log\"}}) on stdout.\n\
         Logs go to stderr. The exit status is 0 whenever a response was written.\n",
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// The whole program of a CPI binary: `fn main() { cpi::serve::<MyCloud>() }`.
pub fn serve<C: Cloud>() -> ! {
    crate::timing::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = run::<C>(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        LogSink::new(),
    );
    crate::timing::finish();
    std::process::exit(code)
}

/// One call: reads the request from `input`, writes the response to
/// `output`, logs to `sink`. Returns the exit status (0 once a response was
/// written).
pub fn run<C: Cloud>(
    args: &[String],
    input: &mut dyn Read,
    output: &mut dyn Write,
    sink: LogSink,
) -> i32 {
    let invocation = match Invocation::parse(args) {
        Ok(Invocation::Help) => {
            let _ = output.write_all(usage(C::NAME).as_bytes());
            return 0;
        }
        Ok(Invocation::Version) => {
            let _ = writeln!(output, "{} {}", C::NAME, env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(Invocation::Run { config, ca_cert }) => Ok((config, ca_cert)),
        Err(e) => Err(e),
    };

    let response = tracing::subscriber::with_default(sink.subscriber(), || {
        let previous_hook = std::panic::take_hook();
        let hook_sink = sink.clone();
        std::panic::set_hook(Box::new(move |info| {
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            hook_sink.line(&format!("panic{at}: {}", panic_message(info.payload())));
        }));
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            invocation.and_then(|(config, ca_cert)| handle::<C>(input, config, ca_cert))
        }));
        std::panic::set_hook(previous_hook);
        match outcome {
            Ok(Ok(result)) => Response::ok(result, String::new()),
            Ok(Err(e)) => {
                tracing::error!(
                    "{} ({})",
                    crate::wire::bounded(e.message()),
                    e.kind().wire_type()
                );
                Response::err(&e, String::new())
            }
            Err(payload) => {
                let e = Error::cpi(format!("internal error: {}", panic_message(&*payload)));
                Response::err(&e, String::new())
            }
        }
    });
    let response = Response {
        log: sink.contents(),
        ..response
    };
    let mut text = serde_json::to_string(&response).unwrap_or_else(|e| {
        format!(r#"{{"result":null,"error":{{"type":"Bosh::Clouds::CpiError","message":"encoding the response: {e}","ok_to_retry":false}},"log":""}}"#)
    });
    text.push('\n');
    crate::timing::phase("respond", || {
        let _ = output.write_all(text.as_bytes());
        let _ = output.flush();
    });
    0
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

fn read_request(input: &mut dyn Read) -> Result<Request> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .map_err(|e| Error::cpi(format!("reading the request from stdin: {e}")))?;
    if text.trim().is_empty() {
        return Err(Error::cpi(
            "empty request: expected one JSON request on stdin",
        ));
    }
    let raw: Value = serde_json::from_str(&text)
        .map_err(|e| Error::cpi(format!("malformed request JSON on stdin: {e}")))?;
    // Secrets in the request (the director's env, agent settings) are known
    // before anything can log them.
    secret::register_from_json(&raw);
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at '{path}'")
        };
        Error::cpi(format!("invalid request{at}: {}", e.inner()))
    })
}

fn handle<C: Cloud>(
    input: &mut dyn Read,
    config_path: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
) -> Result<Value> {
    let request = timing::phase("read_request", || read_request(input))?;
    let method = request.method.as_str();
    timing::set_method(method);
    let request_id = request
        .context
        .get("request_id")
        .and_then(|v| v.as_str())
        .unwrap_or("-");
    let span = tracing::info_span!("cpi", req = request_id, method);
    let _guard = span.enter();

    if !dispatch::is_known(method) {
        return Err(dispatch::unknown_method(method));
    }
    let config_path = config_path.ok_or_else(|| {
        Error::cpi(format!(
            "no config file given: run as `{} CONFIG_PATH` or `-configPath=CONFIG_PATH`",
            C::NAME
        ))
    })?;
    let mut ctx =
        CallContext::from_request(method, &request.context, request.api_version, u32::MAX);
    let parsed = timing::phase("config", || {
        let mut raw_config = config::read_file(&config_path)?;
        secret::register_from_json(&raw_config);
        let overrides = ctx.config_overrides();
        if !overrides.is_empty() {
            C::merge_context(&mut raw_config, &overrides);
        }
        config::parse::<C::Config>(raw_config)
    })?;
    for key in &parsed.unknown_keys {
        tracing::warn!("config key '{key}' is not used by {}", C::NAME);
    }
    let info = C::info(&parsed.config);
    if method == "info" {
        return Ok(json!(info));
    }
    ctx.api_version = request
        .api_version
        .unwrap_or(1)
        .clamp(1, info.api_version.max(1));
    ctx.ca_cert_path = ca_cert;
    let api_version = ctx.api_version;
    let cloud = timing::phase("new", || C::new(parsed.config, ctx))?;
    if method == "ping" {
        return Ok(json!("pong"));
    }
    let runtime = timing::phase("runtime", || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::cpi(format!("starting the async runtime: {e}")))
    })?;
    let started = std::time::Instant::now();
    let result = timing::phase("dispatch", || {
        runtime.block_on(dispatch::dispatch(
            &cloud,
            method,
            request.arguments,
            api_version,
        ))
    });
    // Dropping the cloud and the runtime (idle connections, blocking
    // threads) is part of the call too.
    timing::phase("teardown", || {
        drop(cloud);
        drop(runtime);
    });
    tracing::info!(
        "{method} took {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation> {
        Invocation::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn run_with(config: Option<&str>, ca: Option<&str>) -> Invocation {
        Invocation::Run {
            config: config.map(PathBuf::from),
            ca_cert: ca.map(PathBuf::from),
        }
    }

    #[test]
    fn accepts_every_job_form() {
        assert_eq!(p(&["/c.json"]).unwrap(), run_with(Some("/c.json"), None));
        assert_eq!(
            p(&["/c.json", "/ca.pem"]).unwrap(),
            run_with(Some("/c.json"), Some("/ca.pem"))
        );
        assert_eq!(
            p(&["-configPath=/c.json"]).unwrap(),
            run_with(Some("/c.json"), None)
        );
        assert_eq!(
            p(&["-configPath", "/c.json"]).unwrap(),
            run_with(Some("/c.json"), None)
        );
        assert_eq!(
            p(&["-configFile=/c.json", "-caCert=/ca"]).unwrap(),
            run_with(Some("/c.json"), Some("/ca"))
        );
        assert_eq!(
            p(&["--config", "/c.json"]).unwrap(),
            run_with(Some("/c.json"), None)
        );
        assert_eq!(p(&["--help"]).unwrap(), Invocation::Help);
        assert_eq!(p(&["--version"]).unwrap(), Invocation::Version);
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["-configPath"]).is_err());
    }
}
