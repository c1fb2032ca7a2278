//! Per-call wall time of the lifecycle, median over runs, beside what the
//! incumbent CPI takes on the same kind of machine.

use crate::checks::Ctx;
use crate::cpi::Cpi;
use crate::environment::{CpiCommand, Environment};
use crate::registry::RegistryServer;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The lifecycle calls timed, in call order.
pub const CALLS: &[&str] = &[
    "info",
    "create_stemcell",
    "create_vm",
    "has_vm",
    "set_vm_metadata",
    "create_disk",
    "attach_disk",
    "detach_disk",
    "delete_disk",
    "delete_vm",
    "delete_stemcell",
];

/// The incumbent's figure for a call, in ms, where we have one.
pub fn incumbent(cloud: &str, method: &str) -> Option<&'static str> {
    match (cloud, method) {
        ("warden", "info") => Some("4 (Go warden CPI)"),
        ("warden", "create_vm") => Some("41 (Go warden CPI)"),
        ("warden", "attach_disk") => Some("23 (Go warden CPI)"),
        ("aws", _) => Some("600-800 (Ruby AWS CPI)"),
        ("openstack", _) => Some("240-350 (Ruby OpenStack CPI)"),
        ("softlayer", _) => Some("30-55 (Go SoftLayer CPI)"),
        _ => None,
    }
}

/// The switch and the stderr line of `cpi::timing` (crates/cpi).
pub const TIMINGS_ENV: &str = "BOSH_CPI_TIMINGS";
pub const TIMINGS_PREFIX: &str = "BOSH_CPI_TIMINGS ";

/// One call's wall time and where it went (from the CPI's own
/// `BOSH_CPI_TIMINGS` report and the fake's, where it keeps one), in ms.
#[derive(Clone, Debug, Default)]
pub struct Cost {
    pub wall: f64,
    /// Harness spawn to the CPI's `main`: exec, dynamic loading, runtime init.
    pub start_to_main: f64,
    /// The runner's phases by name (read_request, config, new, runtime,
    /// dispatch, teardown, respond).
    pub phases: BTreeMap<String, f64>,
    /// Cloud requests, as the CPI timed them (method and path, or SDK operation).
    pub requests: Vec<(String, f64)>,
    /// From the start of dispatch to the first request: client, TLS and
    /// argument set-up before the cloud is reached (all of dispatch if none).
    pub before_first_request: f64,
    /// The fake's own time for the requests it served, when it reports it.
    pub fake: Option<f64>,
    /// The CPI's own time from `main` to the report at exit.
    pub total: f64,
}

impl Cost {
    pub fn requests_ms(&self) -> f64 {
        self.requests.iter().map(|(_, ms)| ms).sum()
    }
    pub fn phase(&self, name: &str) -> f64 {
        self.phases.get(name).copied().unwrap_or(0.0)
    }
    /// What the breakdown does not account for: exit, request gaps (decoding,
    /// our own work between requests), logging.
    pub fn rest(&self) -> f64 {
        self.wall
            - self.start_to_main
            - self.phase("read_request")
            - self.phase("config")
            - self.setup()
            - self.requests_ms()
            - self.phase("sleep")
            - self.work()
            - self.phase("teardown")
            - self.phase("respond")
            - self.exit()
    }
    /// Inside the dispatched call but neither a cloud request, a wait, nor
    /// the set-up before the first request: decoding, local commands
    /// (mkfs, losetup for warden), our own work between requests.
    pub fn work(&self) -> f64 {
        self.phase("dispatch")
            - self.before_first_request
            - self.requests_ms()
            - self.phase("sleep")
    }
    /// Process exit and reaping: wall minus start-to-main and the CPI's own total.
    pub fn exit(&self) -> f64 {
        self.wall - self.start_to_main - self.total
    }
    /// Cloud set-up: building the cloud, the runtime, and everything before
    /// the first request.
    pub fn setup(&self) -> f64 {
        self.phase("new") + self.phase("runtime") + self.before_first_request
    }

    fn from_reply(reply: &crate::cpi::Reply, spawned_unix_ns: u128, fake: Option<f64>) -> Cost {
        let wall = reply.elapsed.as_secs_f64() * 1e3;
        let doc = reply
            .stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(TIMINGS_PREFIX))
            .and_then(|l| serde_json::from_str::<Value>(l).ok());
        let Some(doc) = doc else {
            return Cost {
                wall,
                fake,
                ..Cost::default()
            };
        };
        let main_ns: u128 = doc["main_unix_ns"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(spawned_unix_ns);
        let mut phases = BTreeMap::new();
        let mut dispatch_at = None;
        for p in doc["phases"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or("?").to_owned();
            if name == "dispatch" {
                dispatch_at = p["at_ms"].as_f64();
            }
            *phases.entry(name).or_insert(0.0) += p["ms"].as_f64().unwrap_or(0.0);
        }
        let requests: Vec<(String, f64)> = doc["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["what"].as_str().unwrap_or("?").to_owned(),
                    r["ms"].as_f64().unwrap_or(0.0),
                )
            })
            .collect();
        let first_at = doc["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["at_ms"].as_f64())
            .fold(f64::INFINITY, f64::min);
        let dispatch = phases.get("dispatch").copied().unwrap_or(0.0);
        let before_first_request = match dispatch_at {
            Some(d) if first_at.is_finite() => (first_at - d).max(0.0),
            _ => 0.0,
        };
        let _ = dispatch;
        Cost {
            wall,
            total: doc["total_ms"].as_f64().unwrap_or(0.0),
            start_to_main: (main_ns.saturating_sub(spawned_unix_ns)) as f64 / 1e6,
            phases,
            requests,
            before_first_request,
            fake,
        }
    }
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Every run's cost per call; an error names the call and run that failed.
/// The CPI runs with `BOSH_CPI_TIMINGS=1`.
pub fn run(
    env: &dyn Environment,
    registry: &RegistryServer,
    runs: usize,
) -> Result<BTreeMap<&'static str, Vec<Cost>>, String> {
    run_beside(env, registry, runs, None).map(|r| r.ours)
}

/// How a baseline CPI is given the environment's config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineArgv {
    /// `-configFile=CONFIG -caCert=CACERT` (the Go OpenStack job).
    Go,
    /// The arguments ours gets.
    Same,
}

impl BaselineArgv {
    pub fn parse(s: &str) -> Result<BaselineArgv, String> {
        match s {
            "go" => Ok(BaselineArgv::Go),
            "same" => Ok(BaselineArgv::Same),
            other => Err(format!("--baseline-argv: '{other}' is not go or same")),
        }
    }

    /// The baseline's command: its binary, our command's config paths.
    /// Absolute paths: the Go CPI opens its config relative to `/`.
    pub fn command(self, ours: &CpiCommand, binary: &Path) -> CpiCommand {
        let absolute = |a: &String| {
            std::path::absolute(a)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| a.clone())
        };
        let args = match self {
            BaselineArgv::Same => ours.args.clone(),
            BaselineArgv::Go => {
                let mut args = Vec::new();
                if let Some(config) = ours.args.first() {
                    args.push(format!("-configFile={}", absolute(config)));
                }
                if let Some(ca) = ours.args.get(1) {
                    args.push(format!("-caCert={}", absolute(ca)));
                }
                args
            }
        };
        CpiCommand {
            binary: binary.to_owned(),
            args,
            env: ours.env.clone(),
        }
    }
}

/// Our costs and, when a baseline ran beside, its (wall time only: it
/// writes no breakdown), with the runs in which it failed.
#[derive(Default)]
pub struct BesideRuns {
    pub ours: BTreeMap<&'static str, Vec<Cost>>,
    pub baseline: BTreeMap<&'static str, Vec<Cost>>,
    pub baseline_failures: Vec<String>,
}

/// `runs` lifecycles of ours, each beside one of the baseline's when given
/// (the order alternating run by run, so that neither always runs on a
/// warmer cloud). Ours failing ends the bench; the baseline failing is
/// recorded and the run goes on (it is not ours to fix).
pub fn run_beside(
    env: &dyn Environment,
    registry: &RegistryServer,
    runs: usize,
    baseline: Option<CpiCommand>,
) -> Result<BesideRuns, String> {
    let mut command = env.cpi();
    command.env.push((TIMINGS_ENV.to_owned(), "1".to_owned()));
    let cpi = Cpi::new(command, Duration::from_secs(120))?.timed();
    let mut ctx = Ctx::new(env, registry, cpi).map_err(|e| format!("starting: {e}"))?;
    let base = match baseline {
        Some(cmd) => Some(
            Cpi::new(cmd, Duration::from_secs(120))?
                .timed()
                .with_versions(ctx.cpi.api_version, ctx.cpi.stemcell_api_version),
        ),
        None => None,
    };
    let ours_cpi = ctx.cpi.clone();
    let mut out = BesideRuns::default();
    for n in 0..runs.max(1) {
        let ours_first = n % 2 == 0;
        for turn in 0..2 {
            let ours = (turn == 0) == ours_first;
            if ours {
                let result = one_run(&mut ctx, &ours_cpi, false, &mut out.ours);
                ctx.cleanup();
                result.map_err(|e| format!("run {}: {e}", n + 1))?;
            } else if let Some(b) = &base {
                let result = one_run(&mut ctx, b, true, &mut out.baseline);
                ctx.cleanup();
                if let Err(e) = result {
                    out.baseline_failures.push(format!("run {}: {e}", n + 1));
                }
            }
        }
    }
    Ok(out)
}

/// The exec of `/bin/true` through the same spawn code as every CPI call:
/// the floor of any process.
pub fn floor(runs: usize) -> Duration {
    let cmd = crate::environment::CpiCommand {
        binary: "/bin/true".into(),
        args: vec![],
        env: vec![],
    };
    let mut times: Vec<Duration> = (0..runs.max(1))
        .map(|_| crate::cpi::run_process_direct(&cmd, b"{}", Duration::from_secs(10)).1)
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// The median of `f` over `costs`.
pub fn median(costs: &[Cost], f: impl Fn(&Cost) -> f64) -> f64 {
    let mut v: Vec<f64> = costs.iter().map(f).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn one_run(
    ctx: &mut Ctx,
    cpi: &Cpi,
    baseline: bool,
    times: &mut BTreeMap<&'static str, Vec<Cost>>,
) -> Result<(), String> {
    let env = ctx.env;
    let (image, props) = ctx.stemcell_args_for_bench()?;
    let mut call = |method: &'static str, args: Vec<Value>| -> Result<Value, String> {
        env.reset_served();
        let spawned = unix_ns();
        let reply = cpi
            .call(method, args)
            .map_err(|e| format!("{method}: {e}"))?;
        if let Some(e) = &reply.error {
            return Err(format!("{method}: {}: {}", e.kind, e.message));
        }
        let fake = env.served().map(|s| {
            s.requests
                .iter()
                .map(|(_, d)| d.as_secs_f64() * 1e3)
                .sum::<f64>()
        });
        times
            .entry(method)
            .or_default()
            .push(Cost::from_reply(&reply, spawned, fake));
        Ok(reply.result)
    };
    call("info", vec![])?;
    let stemcell = call("create_stemcell", vec![json!(image), props])?;
    ctx.track_stemcell(&stemcell);
    if baseline {
        if let Some(cid) = stemcell.as_str() {
            env.settle_stemcell(cid);
        }
    }
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let vm = call(
        "create_vm",
        vec![
            json!(agent),
            stemcell.clone(),
            ctx.env.vm_cloud_properties(),
            nets,
            json!([]),
            ctx.vm_env(),
        ],
    )?;
    let vm = if vm.is_array() { vm[0].clone() } else { vm };
    ctx.track_vm(&vm);
    call("has_vm", vec![vm.clone()])?;
    call(
        "set_vm_metadata",
        vec![
            vm.clone(),
            json!({"director": "bench", "deployment": "bench"}),
        ],
    )?;
    let disk = call(
        "create_disk",
        vec![json!(1024), ctx.env.disk_cloud_properties(), vm.clone()],
    )?;
    ctx.track_disk(&disk);
    call("attach_disk", vec![vm.clone(), disk.clone()])?;
    call("detach_disk", vec![vm.clone(), disk.clone()])?;
    call("delete_disk", vec![disk])?;
    call("delete_vm", vec![vm])?;
    call("delete_stemcell", vec![stemcell])?;
    ctx.forget_made();
    Ok(())
}
