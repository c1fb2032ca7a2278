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
        Command::Bench { cloud, cpi, runs } => bench(&cloud, &cpi, runs),
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

fn bench(cloud: &str, cpi: &Path, runs: usize) -> Result<bool, String> {
    let c = clouds::find(cloud)?;
    let (registry, env) = start(c, cpi)?;
    let medians = harness::bench::run(env.as_ref(), &registry, runs)?;
    println!("{}: median wall time per call over {runs} runs", env.name());
    println!("{:<18} {:>10}   incumbent (ms)", "call", "median ms");
    for call in harness::bench::CALLS {
        let ms = medians
            .get(call)
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1e3))
            .unwrap_or_else(|| "-".into());
        let incumbent = harness::bench::incumbent(cloud, call).unwrap_or("-");
        println!("{call:<18} {ms:>10}   {incumbent}");
    }
    Ok(true)
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
