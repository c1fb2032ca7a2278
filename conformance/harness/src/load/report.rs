//! The load report: per phase a headline, a table of the lifecycle's calls
//! (count, errors, p50/p95/max), errors by kind, leaks, duplicates, the
//! chaos the cloud acted out, and for throttling the extra wall time.

use super::ledger::{self, Leftover};
use super::{stats, Phase};
use std::fmt::Write;
use std::time::Duration;

/// Failed lifecycles listed in full; the rest are counted.
const FAILURES_SHOWN: usize = 8;

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

fn leftovers(l: &[Leftover]) -> String {
    if l.is_empty() {
        return "none".into();
    }
    ledger::by_kind(l)
        .into_iter()
        .map(|(kind, n)| {
            let ids: Vec<&str> = l
                .iter()
                .filter(|x| x.kind == kind)
                .take(4)
                .map(|x| x.id.as_str())
                .collect();
            let more = if n > ids.len() { ", …" } else { "" };
            format!("{kind} {n} ({}{more})", ids.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `PASS` or `FAIL (why)`.
pub fn status(phase: &Phase) -> String {
    match phase.verdict() {
        Ok(()) => "PASS".into(),
        Err(why) => format!("FAIL ({why})"),
    }
}

/// One phase as text.
pub fn phase(name: &str, p: &Phase) -> String {
    let mut s = String::new();
    if let Some(u) = &p.unsupported {
        let _ = writeln!(s, "== {name} load, {}: {u} — not run, not a pass", p.label);
        return s;
    }
    let lifecycle_calls: Vec<_> = p.calls.iter().filter(|c| !c.cleanup).cloned().collect();
    let cleanup_calls: Vec<_> = p.calls.iter().filter(|c| c.cleanup).cloned().collect();
    let _ = writeln!(
        s,
        "== {name} load, {}: K={} R={}, {} lifecycles ({} failed), {} calls, {} errors, {} leaked, {} duplicated, {:.1} s: {}",
        p.label,
        p.parallel,
        p.rounds,
        p.lifecycles,
        p.failures.len(),
        p.calls.len(),
        p.errors(),
        p.leaks.len(),
        p.duplicates.len(),
        p.wall.as_secs_f64(),
        status(p)
    );
    let _ = writeln!(
        s,
        "{:<18} {:>6} {:>6} {:>8} {:>8} {:>8}",
        "method", "calls", "errors", "p50 ms", "p95 ms", "max ms"
    );
    for (method, m) in stats::per_method(&lifecycle_calls) {
        let skipped = if m.skipped > 0 {
            format!("  ({} NotImplemented, skipped)", m.skipped)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{method:<18} {:>6} {:>6} {:>8} {:>8} {:>8}{skipped}",
            m.calls,
            m.errors,
            ms(m.p50),
            ms(m.p95),
            ms(m.max)
        );
    }
    if !cleanup_calls.is_empty() {
        let errors = cleanup_calls
            .iter()
            .filter(|c| c.answer.error_kind().is_some())
            .count();
        let _ = writeln!(
            s,
            "{:<18} {:>6} {:>6}   (director-style cleanup; {} left for the last pass, chaos off)",
            "cleanup",
            cleanup_calls.len(),
            errors,
            p.swept
        );
    }
    let kinds = stats::errors_by_kind(&p.calls);
    let kinds = if kinds.is_empty() {
        "none".to_owned()
    } else {
        kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "errors by kind: {kinds}");
    // The first few errors in full: a count by kind says something failed,
    // the message says what to fix.
    let errors: Vec<&super::lifecycle::Call> = p
        .calls
        .iter()
        .filter(|c| c.answer.error_kind().is_some())
        .collect();
    for c in errors.iter().take(FAILURES_SHOWN) {
        let _ = writeln!(
            s,
            "  {} {}: {}",
            c.method,
            c.answer.error_kind().unwrap_or_default(),
            super::one_line(c.answer.message().unwrap_or_default())
        );
    }
    if errors.len() > FAILURES_SHOWN {
        let _ = writeln!(s, "  … and {} more errors", errors.len() - FAILURES_SHOWN);
    }
    let unkinded = stats::unkinded(&p.calls);
    if unkinded > 0 {
        let _ = writeln!(s, "failed calls without a Bosh::Clouds kind: {unkinded}");
    }
    let _ = writeln!(s, "leaked: {}", leftovers(&p.leaks));
    let _ = writeln!(s, "duplicated: {}", leftovers(&p.duplicates));
    if !p.named_only.is_empty() {
        let _ = writeln!(
            s,
            "left by failed calls and named only in their messages (removed by the cleanup; a director would not): {}",
            leftovers(&p.named_only)
        );
    }
    if let Some(c) = &p.counts {
        let _ = writeln!(
            s,
            "chaos: {} requests, {} throttled, {} server errors, {} lost answers, {} dropped mid-body",
            c.requests, c.throttled, c.server_errors, c.lost_answers, c.dropped_mid_body
        );
    }
    for m in p.stuck.iter().take(FAILURES_SHOWN) {
        let _ = writeln!(s, "  last pass (chaos off) failed {}", super::one_line(m));
    }
    if let Some(a) = &p.aborted {
        let _ = writeln!(s, "aborted: {a}");
    }
    for f in p.failures.iter().take(FAILURES_SHOWN) {
        let _ = writeln!(s, "  failed {}", super::one_line(f));
    }
    if p.failures.len() > FAILURES_SHOWN {
        let _ = writeln!(
            s,
            "  … and {} more failed lifecycles",
            p.failures.len() - FAILURES_SHOWN
        );
    }
    s
}

/// Every phase, then the extra time a throttled phase took over the run
/// without chaos.
pub fn render(name: &str, phases: &[Phase]) -> String {
    let mut s = String::new();
    for p in phases {
        s.push_str(&phase(name, p));
    }
    let base = phases.iter().find(|p| p.chaos.is_none());
    for p in phases
        .iter()
        .filter(|p| p.unsupported.is_none() && p.chaos.as_ref().is_some_and(|c| c.throttle > 0.0))
    {
        if let Some(base) = base {
            let extra = p.wall.as_secs_f64() - base.wall.as_secs_f64();
            let _ = writeln!(
                s,
                "extra wall time under {}: {:+.1} s ({:+.0}%) against {:.1} s without chaos",
                p.label,
                extra,
                100.0 * extra / base.wall.as_secs_f64().max(1e-3),
                base.wall.as_secs_f64()
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::lifecycle::{Answer, Call};
    use super::*;
    use crate::environment::Chaos;

    #[test]
    fn renders_the_table_and_the_throttling_cost() {
        let call = |method, n| Call {
            method,
            elapsed: Duration::from_millis(n),
            answer: Answer::Ok,
            cleanup: false,
        };
        let base = Phase {
            label: "no chaos".into(),
            parallel: 2,
            rounds: 1,
            lifecycles: 2,
            calls: vec![call("create_vm", 100), call("create_vm", 300)],
            wall: Duration::from_secs(10),
            ..Phase::default()
        };
        let throttled = Phase {
            label: "throttle 20%".into(),
            chaos: Some(Chaos::throttling(0.2, 1)),
            wall: Duration::from_secs(12),
            leaks: vec![Leftover {
                kind: "vm",
                id: "vm-1".into(),
                known: true,
            }],
            ..base.clone()
        };
        let text = render("cpi-x", &[base, throttled]);
        assert!(text.contains("== cpi-x load, no chaos: K=2 R=1, 2 lifecycles (0 failed), 2 calls, 0 errors, 0 leaked, 0 duplicated, 10.0 s: PASS"), "{text}");
        assert!(
            text.contains("create_vm               2      0      100      300      300"),
            "{text}"
        );
        assert!(text.contains("leaked: vm 1 (vm-1)"), "{text}");
        assert!(text.contains("FAIL (1 leaked)"), "{text}");
        assert!(
            text.contains(
                "extra wall time under throttle 20%: +2.0 s (+20%) against 10.0 s without chaos"
            ),
            "{text}"
        );
        let unsupported = Phase {
            label: "soak".into(),
            unsupported: Some("chaos not supported by cpi-x".into()),
            ..Phase::default()
        };
        assert!(phase("cpi-x", &unsupported)
            .contains("chaos not supported by cpi-x — not run, not a pass"));
    }
}
