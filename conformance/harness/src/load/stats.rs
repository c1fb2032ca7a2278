//! Figures over the calls of a load run: per method, the count, errors and
//! the p50/p95/max wall time; errors by kind.

use super::lifecycle::{Answer, Call};
use std::collections::BTreeMap;
use std::time::Duration;

/// The nearest-rank percentile (`p` in 0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: u32) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (u64::from(p.min(100)) * sorted.len() as u64).div_ceil(100);
    sorted[(rank.max(1) - 1) as usize]
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MethodStats {
    pub calls: usize,
    pub errors: usize,
    /// NotImplemented answers the director takes as "not this cloud".
    pub skipped: usize,
    pub p50: Duration,
    pub p95: Duration,
    pub max: Duration,
}

/// Per method, in the order the lifecycle first calls them.
pub fn per_method(calls: &[Call]) -> Vec<(&'static str, MethodStats)> {
    let mut order: Vec<&'static str> = Vec::new();
    let mut times: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    let mut stats: BTreeMap<&'static str, MethodStats> = BTreeMap::new();
    for c in calls {
        if !stats.contains_key(c.method) {
            order.push(c.method);
        }
        let s = stats.entry(c.method).or_default();
        s.calls += 1;
        match c.answer {
            Answer::Ok => {}
            Answer::NotImplemented => s.skipped += 1,
            Answer::Error(_) | Answer::Broken(_) => s.errors += 1,
        }
        times.entry(c.method).or_default().push(c.elapsed);
    }
    order
        .into_iter()
        .map(|m| {
            let mut t = times.remove(m).unwrap_or_default();
            t.sort();
            let mut s = stats.remove(m).unwrap_or_default();
            s.p50 = percentile(&t, 50);
            s.p95 = percentile(&t, 95);
            s.max = t.last().copied().unwrap_or_default();
            (m, s)
        })
        .collect()
}

/// Failed calls by kind: the wire's `Bosh::Clouds::*` type, or what the
/// director would report for a call without a valid answer.
pub fn errors_by_kind(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for c in calls {
        if let Some(kind) = c.answer.error_kind() {
            *by.entry(kind).or_default() += 1;
        }
    }
    by
}

/// Failed calls whose answer is not a `Bosh::Clouds::*` error: crashes, hung
/// or malformed answers, or an error type the director does not know.
pub fn unkinded(calls: &[Call]) -> usize {
    calls
        .iter()
        .filter(|c| match &c.answer {
            Answer::Error(e) => !e.kind.starts_with("Bosh::Clouds::"),
            Answer::Broken(_) => true,
            _ => false,
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpi::WireError;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn call(method: &'static str, elapsed: u64, answer: Answer) -> Call {
        Call {
            method,
            elapsed: ms(elapsed),
            answer,
            cleanup: false,
        }
    }

    fn err(kind: &str) -> Answer {
        Answer::Error(WireError {
            kind: kind.into(),
            message: "m".into(),
            ok_to_retry: false,
        })
    }

    #[test]
    fn nearest_rank_percentiles() {
        let t: Vec<Duration> = (1..=20).map(ms).collect();
        assert_eq!(percentile(&t, 50), ms(10));
        assert_eq!(percentile(&t, 95), ms(19));
        assert_eq!(percentile(&t, 100), ms(20));
        assert_eq!(percentile(&t[..1], 95), ms(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
        let t: Vec<Duration> = (1..=3).map(ms).collect();
        assert_eq!(percentile(&t, 50), ms(2));
        assert_eq!(percentile(&t, 95), ms(3));
    }

    #[test]
    fn per_method_counts_errors_and_skips_in_call_order() {
        let calls = vec![
            call("create_vm", 30, err("Bosh::Clouds::VMCreationFailed")),
            call("create_vm", 10, Answer::Ok),
            call("has_vm", 5, Answer::Ok),
            call("create_vm", 20, Answer::Ok),
            call("snapshot_disk", 1, Answer::NotImplemented),
            call("has_vm", 7, Answer::Broken("crash".into())),
        ];
        let stats = per_method(&calls);
        let names: Vec<&str> = stats.iter().map(|(m, _)| *m).collect();
        assert_eq!(names, ["create_vm", "has_vm", "snapshot_disk"]);
        let vm = &stats[0].1;
        assert_eq!((vm.calls, vm.errors, vm.skipped), (3, 1, 0));
        assert_eq!((vm.p50, vm.p95, vm.max), (ms(20), ms(30), ms(30)));
        assert_eq!(stats[2].1.skipped, 1);
        assert_eq!(stats[2].1.errors, 0);
        let kinds = errors_by_kind(&calls);
        assert_eq!(kinds.get("Bosh::Clouds::VMCreationFailed"), Some(&1));
        assert_eq!(kinds.values().sum::<usize>(), 2);
        assert_eq!(unkinded(&calls), 1);
        assert_eq!(unkinded(&[call("x", 1, err("RuntimeError"))]), 1);
    }
}
