//! `conformance`: run the suite against one CPI (`run`), against every
//! cloud's CPI (`demo`), time the lifecycle calls (`bench`), or run many
//! lifecycles at once, with or without chaos (`load`).

mod args;
mod clouds;

use args::Command;
use harness::registry::RegistryServer;
use harness::suite::{self, Options, Status, Summary};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let ok = match command {
        Command::Help => {
            print!("{}", args::USAGE);
            Ok(true)
        }
        Command::List => {
            for check in harness::checks::all() {
                println!("{}", check.id());
            }
            Ok(true)
        }
        Command::Run {
            cloud,
            cpi,
            only,
            call_timeout,
        } => run(&cloud, &cpi, only, call_timeout),
        Command::Demo {
            bin_dir,
            clouds,
            allow_missing,
            call_timeout,
        } => demo(bin_dir, clouds, allow_missing, call_timeout),
        Command::Bench {
            cloud,
            cpi,
            runs,
            baseline,
            instant_transitions,
        } => bench(&cloud, &cpi, runs, baseline, instant_transitions),
        Command::Load {
            cloud,
            cpi,
            options,
        } => load(&cloud, &cpi, &options),
    };
    match ok {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the registry and the cloud's environment; a panic while starting
/// is reported as a start failure, not a crash of the whole demo.
fn start(
    cloud: &clouds::Cloud,
    cpi: &Path,
) -> Result<(RegistryServer, Box<dyn harness::Environment>), String> {
    if !cpi.is_file() {
        return Err(format!("CPI binary {} not found", cpi.display()));
    }
    let cpi = std::fs::canonicalize(cpi).map_err(|e| format!("{}: {e}", cpi.display()))?;
    let registry = RegistryServer::start()?;
    let env = std::panic::catch_unwind(AssertUnwindSafe(|| {
        (cloud.start)(&cpi, registry.endpoint())
    }))
    .map_err(|_| "starting the environment panicked".to_owned())??;
    Ok((registry, env))
}

fn run_suite(
    cloud: &clouds::Cloud,
    cpi: &Path,
    only: Vec<String>,
    call_timeout: Duration,
) -> Result<Summary, NotRun> {
    // An unknown --only is an error before any cloud starts.
    suite::select(&only).map_err(NotRun::Broken)?;
    let (registry, env) = start(cloud, cpi)
        .map_err(|e| NotRun::Missing(format!("{} not run: {e}", cloud.binary())))?;
    let options = Options {
        only,
        call_bound: call_timeout,
    };
    let mut out = std::io::stdout();
    suite::run(env.as_ref(), &registry, &options, &mut out).map_err(|e| {
        NotRun::Broken(format!(
            "{} failed before its first check: {e}",
            cloud.binary()
        ))
    })
}

/// Why a suite did not run: the cloud could not start (excusable with
/// `--allow-missing`), or the CPI failed before any check (never excused).
enum NotRun {
    Missing(String),
    Broken(String),
}

impl std::fmt::Display for NotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRun::Missing(m) | NotRun::Broken(m) => f.write_str(m),
        }
    }
}

fn run(cloud: &str, cpi: &Path, only: Vec<String>, call_timeout: Duration) -> Result<bool, String> {
    let cloud = clouds::find(cloud)?;
    let summary = run_suite(cloud, cpi, only, call_timeout).map_err(|e| e.to_string())?;
    println!("{}", summary.line());
    Ok(summary.count(Status::Fail) == 0)
}

fn demo(
    bin_dir: Option<PathBuf>,
    names: Option<Vec<String>>,
    allow_missing: bool,
    call_timeout: Duration,
) -> Result<bool, String> {
    let bin_dir = match bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or("cannot tell this binary's directory: give --bin-dir")?,
    };
    let names =
        names.unwrap_or_else(|| clouds::DEMO_DEFAULT.iter().map(|s| s.to_string()).collect());
    let selected = names
        .iter()
        .map(|n| clouds::find(n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut lines = Vec::new();
    let (mut passed, mut failed) = (0, 0);
    for cloud in selected {
        println!("== {} ==", cloud.binary());
        let _ = std::io::stdout().flush();
        match run_suite(
            cloud,
            &bin_dir.join(cloud.binary()),
            Vec::new(),
            call_timeout,
        ) {
            Ok(summary) => {
                println!("{}\n", summary.line());
                passed += summary.count(Status::Pass);
                failed += summary.count(Status::Fail);
                lines.push(summary.line());
            }
            Err(e) => {
                let excused = allow_missing && matches!(e, NotRun::Missing(_));
                let counted = if excused {
                    "allowed by --allow-missing"
                } else {
                    "counted as a failure"
                };
                let line = format!("{e} ({counted})");
                println!("{line}\n");
                if !excused {
                    failed += 1;
                }
                lines.push(line);
            }
        }
    }
    println!("== summary ==");
    for line in &lines {
        println!("{line}");
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn bench(
    cloud: &str,
    cpi: &Path,
    runs: usize,
    baseline: Option<args::Baseline>,
    instant_transitions: bool,
) -> Result<bool, String> {
    use harness::bench::median;
    let c = clouds::find(cloud)?;
    let (registry, env) = start(c, cpi)?;
    if instant_transitions {
        if !env.instant_transitions() {
            return Err(format!(
                "--instant-transitions: the {cloud} environment cannot"
            ));
        }
        println!(
            "(the fake settles every transitional state at once: waits end on their first look)"
        );
    }
    let base_cmd = baseline
        .as_ref()
        .map(|b| b.argv.command(&env.cpi(), &b.cpi));
    let beside = harness::bench::run_beside(env.as_ref(), &registry, runs, base_cmd)?;
    let costs = beside.ours;
    let floor = harness::bench::floor(runs.max(15)).as_secs_f64() * 1e3;
    println!(
        "{}: median ms per call over {runs} runs (BOSH_CPI_TIMINGS breakdown); exec of /bin/true from the same harness: {floor:.2} ms",
        env.name()
    );
    println!(
        "{:<16} {:>7} {:>7} {:>7} {:>7} {:>7} {:>12} {:>7} {:>7} {:>7} {:>7} {:>7}   incumbent (ms)",
        "call", "wall", "start", "config", "set-up", "cloud", "requests", "fake", "waits", "work", "exit", "rest"
    );
    for call in harness::bench::CALLS {
        let Some(v) = costs.get(call) else {
            println!("{call:<16} {:>7}", "-");
            continue;
        };
        let n = median(v, |c| c.requests.len() as f64);
        let fake = if v.iter().all(|c| c.fake.is_some()) {
            format!("{:.2}", median(v, |c| c.fake.unwrap_or(0.0)))
        } else {
            "-".into()
        };
        println!(
            "{call:<16} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>12} {:>7} {:>7.2} {:>7.2} {:>7.2} {:>7.2}   {}",
            median(v, |c| c.wall),
            median(v, |c| c.start_to_main),
            median(v, |c| c.phase("config")),
            median(v, |c| c.setup()),
            median(v, |c| c.requests_ms()),
            format!("{n:.0} req"),
            fake,
            median(v, |c| c.phase("sleep")),
            median(v, |c| c.work()),
            median(v, |c| c.exit()),
            median(v, |c| c.rest()),
            harness::bench::incumbent(cloud, call).unwrap_or("-"),
        );
    }
    println!("set-up and rest in detail (medians, ms):");
    println!(
        "  {:<16} {:>7} {:>7} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "call", "read", "new", "runtime", "pre-req", "teardown", "respond", "exit"
    );
    for call in harness::bench::CALLS {
        let Some(v) = costs.get(call) else { continue };
        println!(
            "  {call:<16} {:>7.2} {:>7.2} {:>9.2} {:>9.2} {:>8.2} {:>8.2} {:>6.2}",
            median(v, |c| c.phase("read_request")),
            median(v, |c| c.phase("new")),
            median(v, |c| c.phase("runtime")),
            median(v, |c| c.before_first_request),
            median(v, |c| c.phase("teardown")),
            median(v, |c| c.phase("respond")),
            median(v, |c| c.exit()),
        );
    }
    // The requests of each call, from the median run of the call.
    println!("requests per call (count x median ms, from all runs):");
    for call in harness::bench::CALLS {
        let Some(v) = costs.get(call) else { continue };
        let mut by: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for c in v {
            for (what, ms) in &c.requests {
                by.entry(route(what)).or_default().push(*ms);
            }
        }
        if by.is_empty() {
            continue;
        }
        let parts: Vec<String> = by
            .into_iter()
            .map(|(what, mut ms)| {
                ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                format!(
                    "{}x {what} {:.2}",
                    (ms.len() as f64 / v.len() as f64).round(),
                    ms[ms.len() / 2]
                )
            })
            .collect();
        println!("  {call:<16} {}", parts.join("; "));
    }
    if let Some(b) = &baseline {
        print_beside(
            b,
            &costs,
            &beside.baseline,
            &beside.baseline_failures,
            floor,
        );
    }
    println!("columns: start = spawn to main (exec, loading); config = read and parse cpi.json; set-up = build the cloud, the runtime, and all before the first request (clients, TLS roots); cloud = time in cloud requests; waits = the waits' pauses (cpi::wait); work = the rest of the dispatched call (decoding, local commands, work between requests); exit = wall - start - the CPI's own total (process exit and reaping); rest = what none of these covers (reading the request, teardown, writing the response, logging)");
    Ok(true)
}

/// Ours beside the baseline, per call: medians of wall time from the same
/// runs, and how many times faster ours is.
fn print_beside(
    b: &args::Baseline,
    ours: &std::collections::BTreeMap<&'static str, Vec<harness::bench::Cost>>,
    base: &std::collections::BTreeMap<&'static str, Vec<harness::bench::Cost>>,
    failures: &[String],
    floor: f64,
) {
    use harness::bench::median;
    println!(
        "beside the baseline {} (same runs, alternating; medians of wall ms; floor {floor:.2} ms):",
        b.cpi.display()
    );
    println!(
        "  {:<16} {:>8} {:>9} {:>7} {:>11} {:>14}",
        "call", "ours", "baseline", "ratio", "ours-floor", "baseline-floor"
    );
    for call in harness::bench::CALLS {
        let o = ours.get(call).map(|v| median(v, |c| c.wall));
        let g = base.get(call).map(|v| median(v, |c| c.wall));
        let cell = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.2}"));
        let ratio = match (o, g) {
            (Some(o), Some(g)) if o > 0.0 => format!("{:.2}x", g / o),
            _ => "-".into(),
        };
        println!(
            "  {call:<16} {:>8} {:>9} {:>7} {:>11} {:>14}",
            cell(o),
            cell(g),
            ratio,
            cell(o.map(|o| o - floor)),
            cell(g.map(|g| g - floor)),
        );
    }
    println!("  ratio = baseline / ours (above 1: ours is faster)");
    for f in failures {
        println!("  baseline failed in {f}");
    }
}

/// A request label with its ids folded: `GET /servers/{id}`.
fn route(what: &str) -> String {
    what.split('/')
        .map(|seg| {
            let digits = seg.chars().filter(|c| c.is_ascii_digit()).count();
            if seg.len() >= 8 && digits >= 2 || (!seg.is_empty() && digits == seg.len()) {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn load(cloud: &str, cpi: &Path, options: &harness::load::Options) -> Result<bool, String> {
    let c = clouds::find(cloud)?;
    let (registry, env) = start(c, cpi)?;
    let progress = |line: &str| eprintln!("{line}");
    let phases = harness::load::run(env.as_ref(), &registry, options, &progress)?;
    print!("{}", harness::load::report::render(env.name(), &phases));
    let _ = std::io::stdout().flush();
    Ok(phases.iter().all(|p| p.verdict().is_ok()))
}
