//! The load mode (`conformance load`): K director-shaped lifecycles at once,
//! R rounds, against one environment, optionally with the cloud throttling
//! or failing at random (`Environment::chaos`); then the director-style
//! cleanup and a reading of the cloud against what the calls said.

pub mod cids;
pub mod ledger;
pub mod lifecycle;
pub mod report;
pub mod stats;

use crate::checks::Ctx;
use crate::cpi::Cpi;
use crate::environment::{Chaos, ChaosCounts, Environment, Inventory};
use crate::registry::RegistryServer;
use cids::Shapes;
use ledger::Leftover;
use lifecycle::{Answer, Call, Input, Outcome, Targets};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// What the cloud does while the lifecycles run.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Nothing: 0 errors and 0 leaks expected.
    Off,
    /// A run without chaos, then one with this share of requests throttled;
    /// 0 errors, 0 leaks, and the extra wall time reported.
    Throttle(f64),
    /// The soak: random server errors, lost answers, dropped connections.
    /// Every failure must carry a Bosh::Clouds kind; 0 leaks after cleanup.
    Soak,
    /// Any chaos, under a label (for tests; not on the command line).
    Custom(String, Chaos),
}

pub const DEFAULT_THROTTLE_SHARE: f64 = 0.2;

impl Mode {
    /// `off`, `throttle`, `throttle:0.3`, `soak`.
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s.split_once(':') {
            None if s == "off" => Ok(Mode::Off),
            None if s == "soak" => Ok(Mode::Soak),
            None if s == "throttle" => Ok(Mode::Throttle(DEFAULT_THROTTLE_SHARE)),
            Some(("throttle", share)) => match share.parse::<f64>() {
                Ok(x) if x > 0.0 && x < 1.0 => Ok(Mode::Throttle(x)),
                _ => Err(format!(
                    "--chaos throttle:{share}: the share must be a number between 0 and 1"
                )),
            },
            _ => Err(format!(
                "--chaos {s}: expected off, throttle, throttle:SHARE or soak"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub parallel: usize,
    pub rounds: usize,
    pub mode: Mode,
    pub seed: u64,
    /// Per-call bound: a CPI call running longer is killed (and counted).
    pub call_bound: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallel: 16,
            rounds: 3,
            mode: Mode::Off,
            seed: 1,
            call_bound: Duration::from_secs(120),
        }
    }
}

/// One run of K×R lifecycles under one chaos setting.
#[derive(Clone, Debug, Default)]
pub struct Phase {
    /// `no chaos`, `throttle 20%`, `soak`.
    pub label: String,
    pub chaos: Option<Chaos>,
    /// Set when the environment cannot act the chaos out.
    pub unsupported: Option<String>,
    /// Set when the run could not go on (no stemcell).
    pub aborted: Option<String>,
    pub parallel: usize,
    pub rounds: usize,
    pub lifecycles: usize,
    /// `label: call: kind: message` of each failed lifecycle.
    pub failures: Vec<String>,
    pub calls: Vec<Call>,
    pub wall: Duration,
    /// Cleanup targets only finished by the last pass, with chaos off.
    pub swept: usize,
    /// The last pass's failed calls (`method: kind: message`): why a
    /// known cid could not be removed even with chaos off.
    pub stuck: Vec<String>,
    /// What the cloud holds after the cleanup that it did not before.
    pub leaks: Vec<Leftover>,
    /// Things the cloud held that no call returned and no message named.
    pub duplicates: Vec<Leftover>,
    /// Things the cloud held at a round's end that no call returned but an
    /// error message named: the cleanup removes them, a real director
    /// (which does not read messages) would not.
    pub named_only: Vec<Leftover>,
    pub counts: Option<ChaosCounts>,
}

impl Phase {
    pub fn errors(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| matches!(c.answer, Answer::Error(_) | Answer::Broken(_)))
            .count()
    }

    /// The chaos makes calls fail (not only throttles): failed calls are
    /// expected then, as long as each carries its kind.
    pub fn faults_expected(&self) -> bool {
        self.chaos
            .as_ref()
            .is_some_and(|c| c.server_error > 0.0 || c.lost_answer > 0.0 || c.drop_mid_body > 0.0)
    }

    /// Why this phase does not pass, if it does not.
    pub fn verdict(&self) -> Result<(), String> {
        if let Some(u) = &self.unsupported {
            return Err(u.clone());
        }
        if let Some(a) = &self.aborted {
            return Err(format!("aborted: {a}"));
        }
        let mut why = Vec::new();
        if self.faults_expected() {
            let n = stats::unkinded(&self.calls);
            if n > 0 {
                why.push(format!("{n} failed calls without a Bosh::Clouds kind"));
            }
        } else if self.errors() > 0 {
            why.push(format!("{} errors", self.errors()));
        }
        if !self.leaks.is_empty() {
            why.push(format!("{} leaked", self.leaks.len()));
        }
        if !self.duplicates.is_empty() {
            why.push(format!("{} duplicated", self.duplicates.len()));
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why.join(", "))
        }
    }
}

/// Runs the load: for `Throttle`, the run without chaos first (the time to
/// compare against), then the throttled one.
pub fn run(
    env: &dyn Environment,
    registry: &RegistryServer,
    options: &Options,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<Phase>, String> {
    if options.parallel > 1 && !env.concurrent() {
        return Err(format!(
            "{} cannot serve calls from many CPI processes at once (Environment::concurrent)",
            env.name()
        ));
    }
    let cpi = Cpi::new(env.cpi(), options.call_bound)?;
    let mut ctx = Ctx::new(env, registry, cpi).map_err(|e| format!("starting: {e}"))?;
    let settings: Vec<(String, Option<Chaos>)> = match options.mode {
        Mode::Off => vec![("no chaos".into(), None)],
        Mode::Throttle(share) => vec![
            ("no chaos".into(), None),
            (
                format!("throttle {:.0}%", share * 100.0),
                Some(Chaos::throttling(share, options.seed)),
            ),
        ],
        Mode::Soak => vec![("soak".into(), Some(Chaos::soak(options.seed)))],
        Mode::Custom(ref label, ref chaos) => vec![(label.clone(), Some(chaos.clone()))],
    };
    let mut phases = Vec::new();
    for (label, chaos) in settings {
        progress(&format!(
            "{}: {label}: {} rounds of {} lifecycles",
            env.name(),
            options.rounds,
            options.parallel
        ));
        let phase = Load::new(&mut ctx, options, label, chaos).run(progress);
        ctx.cleanup();
        phases.push(phase);
    }
    Ok(phases)
}

/// The state of one phase while it runs.
struct Load<'c, 'e> {
    ctx: &'c mut Ctx<'e>,
    options: &'c Options,
    phase: Phase,
    /// Every cid a call returned.
    returned: BTreeSet<String>,
    /// Every error message so far, for the cids they name.
    messages: Vec<String>,
    shapes: Shapes,
    stemcell: Option<String>,
}

impl<'c, 'e> Load<'c, 'e> {
    fn new(
        ctx: &'c mut Ctx<'e>,
        options: &'c Options,
        label: String,
        chaos: Option<Chaos>,
    ) -> Self {
        Load {
            ctx,
            options,
            phase: Phase {
                label,
                chaos,
                parallel: options.parallel.max(1),
                rounds: options.rounds,
                ..Phase::default()
            },
            returned: BTreeSet::new(),
            messages: Vec::new(),
            shapes: Shapes::default(),
            stemcell: None,
        }
    }

    fn env(&self) -> &'e dyn Environment {
        self.ctx.env
    }

    fn cpi(&self) -> Result<Cpi, String> {
        let c = &self.ctx.cpi;
        Ok(Cpi::new(self.env().cpi(), self.options.call_bound)?
            .with_versions(c.api_version, c.stemcell_api_version))
    }

    fn record(&mut self, calls: Vec<Call>) {
        for c in &calls {
            if let Some(m) = c.answer.message() {
                self.messages.push(m.to_owned());
            }
        }
        self.phase.calls.extend(calls);
    }

    fn run(mut self, progress: &(dyn Fn(&str) + Sync)) -> Phase {
        let started = Instant::now();
        let before = self.env().inventory();
        if let Some(chaos) = &self.phase.chaos {
            if !self.env().chaos(Some(chaos.clone())) {
                self.phase.unsupported =
                    Some(format!("chaos not supported by {}", self.env().name()));
                return self.phase;
            }
        }
        if let Err(e) = self.create_stemcell() {
            self.phase.aborted = Some(e);
        } else {
            // What the stemcell brought (an image's snapshot, say) is not
            // a lifecycle's: growth is counted from here.
            let base = self.env().inventory();
            for round in 0..self.options.rounds {
                let t = Instant::now();
                if let Err(e) = self.round(round, &base, progress) {
                    self.phase.aborted = Some(e);
                    break;
                }
                progress(&format!(
                    "  round {}/{}: {} calls so far, {} errors, {} failed lifecycles, {:.1} s",
                    round + 1,
                    self.options.rounds,
                    self.phase.calls.len(),
                    self.phase.errors(),
                    self.phase.failures.len(),
                    t.elapsed().as_secs_f64()
                ));
            }
            self.delete_stemcell();
        }
        if self.phase.chaos.is_some() {
            self.phase.counts = Some(self.env().chaos_counts());
            self.env().chaos(None);
        }
        self.sweep(&before);
        let after = self.env().inventory();
        let known = self.known(&after);
        self.phase.leaks = ledger::leftovers(&before, &after, &known);
        for d in ledger::duplicates(&self.phase.leaks) {
            if !self.phase.duplicates.contains(&d) {
                self.phase.duplicates.push(d);
            }
        }
        self.phase.wall = started.elapsed();
        self.phase
    }

    /// The director uploads the stemcell once; an operator re-runs a failed
    /// upload.
    fn create_stemcell(&mut self) -> Result<(), String> {
        let (image, props) = self.ctx.stemcell_args_for_bench()?;
        let cpi = self.cpi()?;
        for _ in 0..lifecycle::MAX_VM_CREATE_TRIES {
            let (answer, value, elapsed) =
                lifecycle::call(&cpi, "create_stemcell", vec![json!(image), props.clone()]);
            let ok = answer == Answer::Ok;
            self.record(vec![Call {
                method: "create_stemcell",
                elapsed,
                answer,
                cleanup: false,
            }]);
            if ok {
                let cid = value
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| format!("create_stemcell answered {value}, not a cid"))?
                    .to_owned();
                self.returned.insert(cid.clone());
                self.shapes.learn(&cid);
                self.stemcell = Some(cid);
                return Ok(());
            }
        }
        Err("create_stemcell failed every attempt".into())
    }

    fn delete_stemcell(&mut self) {
        let Some(cid) = self.stemcell.clone() else {
            return;
        };
        let Ok(cpi) = self.cpi() else { return };
        for _ in 0..lifecycle::CLEANUP_TRIES {
            let (answer, _, elapsed) = lifecycle::call(&cpi, "delete_stemcell", vec![json!(cid)]);
            let ok = answer == Answer::Ok;
            self.record(vec![Call {
                method: "delete_stemcell",
                elapsed,
                answer,
                cleanup: false,
            }]);
            if ok {
                self.stemcell = None;
                return;
            }
        }
    }

    fn inputs(&mut self, round: usize) -> Vec<Input> {
        let stemcell = self.stemcell.clone().unwrap_or_default();
        let env = self.env();
        (0..self.phase.parallel)
            .map(|i| Input {
                label: format!("r{}-{}", round + 1, i + 1),
                agent_id: self.ctx.agent_id(),
                stemcell: stemcell.clone(),
                vm_cloud_properties: env.vm_cloud_properties(),
                networks: self.ctx.manual_networks(),
                vm_env: self.ctx.vm_env(),
                disk_cloud_properties: env.disk_cloud_properties(),
                disk_size_mb: 1024,
            })
            .collect()
    }

    /// One round; `start` is the cloud once the stemcell exists.
    fn round(
        &mut self,
        round: usize,
        start: &Inventory,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), String> {
        let inputs = self.inputs(round);
        let cpis = (0..inputs.len())
            .map(|_| self.cpi())
            .collect::<Result<Vec<_>, _>>()?;
        let outcomes: Vec<Outcome> = on_threads(cpis, inputs.clone(), |cpi, input| {
            let o = lifecycle::run(&cpi, &input);
            if let Some(f) = &o.failure {
                progress(&format!("    {} failed: {}", input.label, one_line(f)));
            }
            o
        });
        self.phase.lifecycles += outcomes.len();
        let end = self.env().inventory();
        let grown = ledger::grown(start, &end);
        for (kind, id) in &grown {
            if *kind != "other" {
                self.shapes.learn(id);
            }
        }
        let mut cleanups = Vec::new();
        for (input, o) in inputs.iter().zip(outcomes) {
            self.returned.extend(o.returned.iter().cloned());
            self.shapes.learn_all(&o.returned);
            let own_messages: Vec<String> = o
                .calls
                .iter()
                .filter_map(|c| c.answer.message().map(str::to_owned))
                .collect();
            self.record(o.calls);
            if let Some(f) = o.failure {
                self.phase.failures.push(format!("{}: {f}", input.label));
                let named: BTreeSet<String> = own_messages
                    .iter()
                    .flat_map(|m| self.shapes.extract(m))
                    .collect();
                let mut targets = o.left;
                let keep: Vec<String> = self.stemcell.iter().cloned().collect();
                targets.merge(ledger::named_targets(&named, &end, &keep));
                dedup(&mut targets);
                cleanups.push(targets);
            }
        }
        // Growth at the round's end that nothing returned or named: the
        // director will never hear of it.
        let known = self.known(&end);
        let left = ledger::leftovers(start, &end, &known);
        for l in &left {
            let named_only = l.known && l.kind != "other" && !self.returned.contains(&l.id);
            if named_only && !self.phase.named_only.contains(l) {
                self.phase.named_only.push(l.clone());
            }
        }
        for d in ledger::duplicates(&left) {
            if !self.phase.duplicates.contains(&d) {
                progress(&format!(
                    "    duplicate: {} {} (no call returned it)",
                    d.kind, d.id
                ));
                self.phase.duplicates.push(d);
            }
        }
        if cleanups.is_empty() {
            return Ok(());
        }
        let cpis = (0..cleanups.len())
            .map(|_| self.cpi())
            .collect::<Result<Vec<_>, _>>()?;
        let results = on_threads(cpis, cleanups, |cpi, targets| {
            lifecycle::cleanup(&cpi, &targets)
        });
        // What the cleanup could not remove is still listed by the cloud:
        // the last pass (`sweep`) finds it there.
        for (calls, _left) in results {
            self.record(calls);
        }
        Ok(())
    }

    /// Cids the director knows of: returned by a call or named by a message
    /// (with the shapes learned so far and what the cloud lists now).
    fn known(&mut self, now: &Inventory) -> BTreeSet<String> {
        for (kind, id) in ledger::items(now) {
            if kind != "other" && self.returned.contains(&id) {
                self.shapes.learn(&id);
            }
        }
        let mut known = self.returned.clone();
        for m in &self.messages {
            known.extend(self.shapes.extract(m));
        }
        known
    }

    /// The last pass, with chaos off: the operator finishing what the
    /// cleanup could not, for every cid the cloud still lists that a call
    /// returned or a message named.
    fn sweep(&mut self, before: &Inventory) {
        let now = self.env().inventory();
        let known = self.known(&now);
        let grown: BTreeSet<String> = ledger::grown(before, &now)
            .into_iter()
            .filter(|(k, _)| *k != "other")
            .map(|(_, id)| id)
            .collect();
        let still = |ids: &Vec<String>| -> Vec<String> {
            ids.iter()
                .filter(|i| grown.contains(*i) && known.contains(*i))
                .cloned()
                .collect()
        };
        let mut targets = Targets {
            snapshots: still(&now.snapshots),
            attachments: Vec::new(),
            vms: still(&now.vms),
            disks: still(&now.disks),
        };
        let stemcells = still(&now.stemcells);
        dedup(&mut targets);
        self.phase.swept =
            targets.snapshots.len() + targets.vms.len() + targets.disks.len() + stemcells.len();
        if self.phase.swept == 0 {
            return;
        }
        let Ok(cpi) = self.cpi() else { return };
        let (calls, _) = lifecycle::cleanup(&cpi, &targets);
        self.note_stuck(&calls);
        self.record(calls);
        for s in stemcells {
            let (answer, _, elapsed) = lifecycle::call(&cpi, "delete_stemcell", vec![json!(s)]);
            let calls = vec![Call {
                method: "delete_stemcell",
                elapsed,
                answer,
                cleanup: true,
            }];
            self.note_stuck(&calls);
            self.record(calls);
        }
    }

    fn note_stuck(&mut self, calls: &[Call]) {
        for c in calls {
            if let (Some(kind), Some(m)) = (c.answer.error_kind(), c.answer.message()) {
                self.phase.stuck.push(format!("{}: {kind}: {m}", c.method));
            }
        }
    }
}

/// Runs `f` over `items`, one thread per item, each with its own CPI.
fn on_threads<T: Send, R: Send>(
    cpis: Vec<Cpi>,
    items: Vec<T>,
    f: impl Fn(Cpi, T) -> R + Sync,
) -> Vec<R> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = cpis
            .into_iter()
            .zip(items)
            .map(|(cpi, item)| s.spawn(move || f(cpi, item)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

fn dedup(t: &mut Targets) {
    fn once<T: Ord + Clone>(v: &mut Vec<T>) {
        let mut seen = BTreeSet::new();
        v.retain(|x| seen.insert(x.clone()));
    }
    once(&mut t.snapshots);
    once(&mut t.attachments);
    once(&mut t.vms);
    once(&mut t.disks);
}

pub(crate) fn one_line(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() > 400 {
        format!("{}…", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_chaos_modes() {
        assert_eq!(Mode::parse("off"), Ok(Mode::Off));
        assert_eq!(Mode::parse("soak"), Ok(Mode::Soak));
        assert_eq!(
            Mode::parse("throttle"),
            Ok(Mode::Throttle(DEFAULT_THROTTLE_SHARE))
        );
        assert_eq!(Mode::parse("throttle:0.5"), Ok(Mode::Throttle(0.5)));
        for bad in ["throttle:2", "throttle:x", "throttle:0", "loud", "soak:1"] {
            assert!(Mode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn verdicts() {
        let mut p = Phase {
            label: "no chaos".into(),
            ..Phase::default()
        };
        assert_eq!(p.verdict(), Ok(()));
        p.calls.push(Call {
            method: "create_vm",
            elapsed: Duration::ZERO,
            answer: Answer::Error(crate::cpi::WireError {
                kind: "Bosh::Clouds::CloudError".into(),
                message: "m".into(),
                ok_to_retry: false,
            }),
            cleanup: false,
        });
        assert_eq!(p.verdict(), Err("1 errors".into()));
        // A soak expects errors, as long as each has a kind.
        p.chaos = Some(Chaos::soak(1));
        assert_eq!(p.verdict(), Ok(()));
        p.leaks.push(Leftover {
            kind: "disk",
            id: "d".into(),
            known: true,
        });
        assert_eq!(p.verdict(), Err("1 leaked".into()));
        p.unsupported = Some("chaos not supported by cpi-x".into());
        assert_eq!(p.verdict(), Err("chaos not supported by cpi-x".into()));
    }
}
