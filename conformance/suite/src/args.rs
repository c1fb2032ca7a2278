//! The command line, parsed by hand (a handful of flags; no parser crate).

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
conformance: checks that a BOSH CPI behaves as the director and bosh-cli need.

Usage:
  conformance run --cloud CLOUD --cpi PATH [--only CHECK]... [--call-timeout SECS]
  conformance run --list
  conformance demo [--bin-dir DIR] [--clouds a,b] [--allow-missing] [--call-timeout SECS]
  conformance bench --cloud CLOUD --cpi PATH [--runs N]
                    [--baseline-cpi PATH [--baseline-argv go|same]] [--instant-transitions]
  conformance load --cloud CLOUD --cpi PATH [--parallel K] [--rounds R]
                   [--chaos off|throttle[:SHARE]|soak] [--seed N] [--call-timeout SECS]

CLOUD is one of warden, aws, openstack, softlayer, reference. CHECK is a check
(`vms/reboot_vm`), a group (`disks`) or a bare check name; --only repeats.
`demo` starts each cloud's environment with DIR/cpi-<cloud> (DIR defaults to
the directory holding this binary), runs the suite, and exits non-zero on any
failure; a cloud whose environment cannot start counts as a failure unless
--allow-missing is given.
`bench --baseline-cpi` runs another CPI binary (an incumbent) against the same
environment in the same run, alternating with ours, and prints its median
per call and the ratio; `--baseline-argv go` (the default) passes it the
environment's config as `-configFile=CONFIG -caCert=CACERT` (the Go OpenStack
job's form), `same` as ours gets it. `--instant-transitions` makes the fake
settle every transitional state at once (the Go OpenStack CPI polls every
10 s, which would hide everything else).
`load` runs K director-shaped lifecycles at once (default 16), R rounds
(default 3; 5 for soak), then reads the cloud back: calls, errors by kind,
p50/p95/max per method, leaks and duplicates. `throttle` first runs without
chaos, then with SHARE (default 0.2) of requests throttled, and prints the
extra time; `soak` injects server errors, lost answers and dropped
connections. Progress goes to stderr, the report to stdout.
";

#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    List,
    Run {
        cloud: String,
        cpi: PathBuf,
        only: Vec<String>,
        call_timeout: Duration,
    },
    Demo {
        bin_dir: Option<PathBuf>,
        clouds: Option<Vec<String>>,
        allow_missing: bool,
        call_timeout: Duration,
    },
    Bench {
        cloud: String,
        cpi: PathBuf,
        runs: usize,
        baseline: Option<Baseline>,
        instant_transitions: bool,
    },
    Load {
        cloud: String,
        cpi: PathBuf,
        options: harness::load::Options,
    },
}

/// An incumbent CPI timed beside ours by `bench`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Baseline {
    pub cpi: PathBuf,
    pub argv: harness::bench::BaselineArgv,
}

const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    let mut cloud = None;
    let mut cpi = None;
    let mut only = Vec::new();
    let mut list = false;
    let mut bin_dir = None;
    let mut clouds = None;
    let mut allow_missing = false;
    let mut runs = 10usize;
    let mut call_timeout = DEFAULT_CALL_TIMEOUT;
    let mut parallel = 16usize;
    let mut rounds = None;
    let mut mode = harness::load::Mode::Off;
    let mut seed = 1u64;
    let mut baseline_cpi = None;
    let mut instant_transitions = false;
    let mut baseline_argv = harness::bench::BaselineArgv::Go;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--cloud" => cloud = Some(value()?),
            "--cpi" => cpi = Some(PathBuf::from(value()?)),
            "--only" => only.push(value()?),
            "--list" => list = true,
            "--bin-dir" => bin_dir = Some(PathBuf::from(value()?)),
            "--clouds" => {
                clouds = Some(
                    value()?
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "--allow-missing" => allow_missing = true,
            "--runs" => runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--parallel" => parallel = value()?.parse().map_err(|e| format!("--parallel: {e}"))?,
            "--rounds" => rounds = Some(value()?.parse().map_err(|e| format!("--rounds: {e}"))?),
            "--chaos" => mode = harness::load::Mode::parse(&value()?)?,
            "--instant-transitions" => instant_transitions = true,
            "--baseline-cpi" => baseline_cpi = Some(PathBuf::from(value()?)),
            "--baseline-argv" => baseline_argv = harness::bench::BaselineArgv::parse(&value()?)?,
            "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--call-timeout" => {
                let secs: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--call-timeout: {e}"))?;
                call_timeout = Duration::from_secs(secs);
            }
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    let need = |v: Option<String>, flag: &str| v.ok_or_else(|| format!("{sub} needs {flag}"));
    match sub.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "list" => Ok(Command::List),
        "run" if list => Ok(Command::List),
        "run" => Ok(Command::Run {
            cloud: need(cloud, "--cloud")?,
            cpi: cpi.ok_or("run needs --cpi PATH")?,
            only,
            call_timeout,
        }),
        "demo" => Ok(Command::Demo {
            bin_dir,
            clouds,
            allow_missing,
            call_timeout,
        }),
        "bench" => Ok(Command::Bench {
            cloud: need(cloud, "--cloud")?,
            cpi: cpi.ok_or("bench needs --cpi PATH")?,
            runs: runs.max(1),
            baseline: baseline_cpi.map(|cpi| Baseline {
                cpi,
                argv: baseline_argv,
            }),
            instant_transitions,
        }),
        "load" => {
            if parallel == 0 {
                return Err("--parallel must be at least 1".into());
            }
            let soak = mode == harness::load::Mode::Soak;
            Ok(Command::Load {
                cloud: need(cloud, "--cloud")?,
                cpi: cpi.ok_or("load needs --cpi PATH")?,
                options: harness::load::Options {
                    parallel,
                    rounds: rounds.unwrap_or(if soak { 5 } else { 3 }).max(1),
                    mode,
                    seed,
                    call_bound: call_timeout,
                },
            })
        }
        other => Err(format!("unknown command '{other}' (see --help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, String> {
        parse(&s.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn parses_each_command() {
        assert_eq!(
            p("run --cloud warden --cpi /b/cpi-warden --only vms --only=disks/resize_keeps_data")
                .unwrap(),
            Command::Run {
                cloud: "warden".into(),
                cpi: "/b/cpi-warden".into(),
                only: vec!["vms".into(), "disks/resize_keeps_data".into()],
                call_timeout: DEFAULT_CALL_TIMEOUT,
            }
        );
        assert_eq!(p("run --list").unwrap(), Command::List);
        assert_eq!(
            p("demo --clouds warden,aws --allow-missing").unwrap(),
            Command::Demo {
                bin_dir: None,
                clouds: Some(vec!["warden".into(), "aws".into()]),
                allow_missing: true,
                call_timeout: DEFAULT_CALL_TIMEOUT,
            }
        );
        assert_eq!(
            p("bench --cloud aws --cpi x --runs 3").unwrap(),
            Command::Bench {
                cloud: "aws".into(),
                cpi: "x".into(),
                runs: 3,
                baseline: None,
                instant_transitions: false,
            }
        );
        assert_eq!(
            p("bench --cloud openstack --cpi x --baseline-cpi /go/cpi --instant-transitions")
                .unwrap(),
            Command::Bench {
                cloud: "openstack".into(),
                cpi: "x".into(),
                runs: 10,
                baseline: Some(Baseline {
                    cpi: "/go/cpi".into(),
                    argv: harness::bench::BaselineArgv::Go,
                }),
                instant_transitions: true,
            }
        );
        assert!(p("bench --cloud openstack --cpi x --baseline-cpi y --baseline-argv odd").is_err());
        match p("load --cloud warden --cpi x --parallel 4 --chaos throttle:0.3 --seed 7").unwrap() {
            Command::Load { cloud, options, .. } => {
                assert_eq!(cloud, "warden");
                assert_eq!(options.parallel, 4);
                assert_eq!(options.rounds, 3);
                assert_eq!(options.mode, harness::load::Mode::Throttle(0.3));
                assert_eq!(options.seed, 7);
            }
            other => panic!("{other:?}"),
        }
        match p("load --cloud aws --cpi x --chaos soak").unwrap() {
            Command::Load { options, .. } => {
                assert_eq!((options.parallel, options.rounds), (16, 5));
            }
            other => panic!("{other:?}"),
        }
        assert!(p("load --cloud aws --cpi x --parallel 0").is_err());
        assert!(p("load --cloud aws --cpi x --chaos loud").is_err());
        assert!(p("run --cloud warden").is_err());
        assert!(p("run --bogus").is_err());
        assert!(p("frobnicate").is_err());
    }
}
