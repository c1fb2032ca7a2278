//! Runs the checks against one environment: one line per check (status,
//! `group/name`, time), then the CPI's summary line.

use crate::checks::{self, Check, Ctx, Stop};
use crate::cpi::Cpi;
use crate::environment::Environment;
use crate::registry::RegistryServer;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Options {
    /// Check ids (`vms/reboot_vm`), group names (`disks`) or bare check
    /// names; empty for all.
    pub only: Vec<String>,
    /// Per-call bound: a CPI call running longer is killed and fails.
    pub call_bound: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            only: Vec::new(),
            call_bound: Duration::from_secs(120),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Clone, Debug)]
pub struct CheckResult {
    pub id: String,
    pub status: Status,
    pub elapsed: Duration,
    pub reason: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub name: String,
    pub results: Vec<CheckResult>,
}

impl Summary {
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    pub fn status_of(&self, id: &str) -> Option<Status> {
        self.results.iter().find(|r| r.id == id).map(|r| r.status)
    }

    /// `cpi-warden: 41 passed, 0 failed` (`, N skipped` when any were).
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}: {} passed, {} failed",
            self.name,
            self.count(Status::Pass),
            self.count(Status::Fail)
        );
        let skipped = self.count(Status::Skip);
        if skipped > 0 {
            s.push_str(&format!(", {skipped} skipped"));
        }
        s
    }
}

/// The checks `only` selects, in suite order; an unknown name is an error.
pub fn select(only: &[String]) -> Result<Vec<Check>, String> {
    let all = checks::all();
    if only.is_empty() {
        return Ok(all);
    }
    for want in only {
        if !all.iter().any(|c| matches(c, want)) {
            return Err(format!("no check or group named '{want}' (see --list)"));
        }
    }
    Ok(all
        .into_iter()
        .filter(|c| only.iter().any(|w| matches(c, w)))
        .collect())
}

fn matches(c: &Check, want: &str) -> bool {
    c.id() == want || c.group == want || c.name == want
}

/// Runs the selected checks, printing as it goes.
pub fn run(
    env: &dyn Environment,
    registry: &RegistryServer,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Summary, String> {
    let selected = select(&options.only)?;
    let cpi = Cpi::new(env.cpi(), options.call_bound)?;
    let mut ctx = Ctx::new(env, registry, cpi)?;
    let mut results = Vec::new();
    for check in selected {
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (check.run)(&mut ctx)));
        ctx.cleanup();
        let elapsed = started.elapsed();
        let (status, reason) = match outcome {
            Ok(Ok(())) => (Status::Pass, None),
            Ok(Err(Stop::Fail(m))) => (Status::Fail, Some(m)),
            Ok(Err(Stop::Skip(m))) => (Status::Skip, Some(m)),
            Err(_) => (Status::Fail, Some("the check panicked".to_owned())),
        };
        let result = CheckResult {
            id: check.id(),
            status,
            elapsed,
            reason,
        };
        let _ = writeln!(out, "{}", format_line(&result));
        let _ = out.flush();
        results.push(result);
    }
    Ok(Summary {
        name: env.name().to_owned(),
        results,
    })
}

pub fn format_line(r: &CheckResult) -> String {
    let status = match r.status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Skip => "SKIP",
    };
    let mut line = format!("{status}  {:<44} {:>7} ms", r.id, r.elapsed.as_millis());
    if let Some(reason) = &r.reason {
        line.push_str(&format!("\n      {}", reason.replace('\n', "\n      ")));
    }
    line
}
