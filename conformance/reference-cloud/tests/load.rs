//! The load mode (`harness::load`) through the real `cpi-reference` binary:
//! a clean cloud passes with and without throttling, and a cloud that leaks
//! a port per VM, or leaves an unnamed VM when create_vm fails, is caught
//! with the figures the report prints.

use harness::environment::{Chaos, Environment, Fault};
use harness::load::{self, Mode, Options, Phase};
use harness::registry::RegistryServer;
use reference_cloud::{Break, ReferenceEnvironment};
use std::path::Path;
use std::time::Duration;

fn cpi() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cpi-reference"))
}

fn run(breaks: &[Break], mode: Mode, parallel: usize, rounds: usize) -> Vec<Phase> {
    run_with(breaks, None, mode, parallel, rounds)
}

fn run_with(
    breaks: &[Break],
    fault: Option<Fault>,
    mode: Mode,
    parallel: usize,
    rounds: usize,
) -> Vec<Phase> {
    let registry = RegistryServer::start().unwrap();
    let env = ReferenceEnvironment::start(cpi(), registry.endpoint(), breaks).unwrap();
    if let Some(f) = fault {
        assert!(env.inject(f));
    }
    let before = env.inventory();
    let options = Options {
        parallel,
        rounds,
        mode,
        seed: 7,
        call_bound: Duration::from_secs(60),
    };
    let phases = load::run(&env, &registry, &options, &|_| {}).unwrap();
    // Whatever the verdict, the report renders every phase.
    let text = load::report::render(env.name(), &phases);
    for p in &phases {
        assert!(
            text.contains(&format!("cpi-reference load, {}", p.label)),
            "{text}"
        );
    }
    if phases.iter().all(|p| p.leaks.is_empty()) {
        assert_eq!(env.inventory(), before);
    }
    phases
}

/// Lifecycle calls: create_vm, set_vm_metadata, create_disk, attach_disk,
/// has_vm, set_disk_metadata, snapshot_disk, delete_snapshot, detach_disk,
/// delete_vm, delete_disk; plus create_stemcell and delete_stemcell once.
const CALLS_PER_LIFECYCLE: usize = 11;

#[test]
fn a_clean_cloud_passes_with_and_without_throttling() {
    let phases = run(&[], Mode::Throttle(0.3), 3, 2);
    assert_eq!(phases.len(), 2);
    for p in &phases {
        assert_eq!(p.verdict(), Ok(()), "{}", load::report::phase("x", p));
        assert_eq!(p.lifecycles, 6);
        assert_eq!(p.calls.len(), 2 + 6 * CALLS_PER_LIFECYCLE);
        assert!(p.leaks.is_empty() && p.duplicates.is_empty());
    }
    assert!(phases[0].counts.is_none());
    let counts = phases[1].counts.clone().expect("chaos counts");
    assert!(counts.throttled > 0, "{counts:?}");
    assert!(counts.requests > counts.throttled);
}

#[test]
fn a_port_leaked_per_vm_fails_the_run_with_each_port_counted() {
    let phases = run(&[Break::DeleteVmLeaksPort], Mode::Off, 2, 2);
    let p = &phases[0];
    assert_eq!(p.errors(), 0);
    assert_eq!(p.leaks.len(), 4, "{:?}", p.leaks);
    assert!(p
        .leaks
        .iter()
        .all(|l| l.kind == "other" && l.id.starts_with("port:")));
    // Ports are never returned by a call: leaks, not duplicates.
    assert!(p.duplicates.is_empty());
    assert_eq!(p.verdict(), Err("4 leaked".into()));
}

#[test]
fn server_errors_fail_lifecycles_and_the_cleanup_leaves_nothing() {
    // Server errors reach the director (no retry in the CPI): lifecycles
    // fail, the cleanup removes what the calls returned, and nothing leaks.
    let chaos = Chaos {
        server_error: 0.08,
        seed: 3,
        ..Chaos::default()
    };
    let phases = run(
        &[Break::NoRetry],
        Mode::Custom("server errors".into(), chaos.clone()),
        4,
        2,
    );
    let p = &phases[0];
    assert!(
        !p.failures.is_empty(),
        "no lifecycle failed at 8% server errors"
    );
    assert!(p.errors() > 0);
    assert_eq!(load::stats::unkinded(&p.calls), 0);
    assert_eq!(p.verdict(), Ok(()), "{}", load::report::phase("x", p));
}

#[test]
fn a_vm_left_by_a_failed_create_vm_and_named_nowhere_is_a_duplicate() {
    // One create_vm fails after its VM exists, leaves it (broken on
    // purpose), and its message does not name it.
    let phases = run_with(
        &[Break::CreateVmLeaksOnFailure],
        Some(Fault::CreateVmAfterVmExists),
        Mode::Off,
        3,
        1,
    );
    let p = &phases[0];
    assert_eq!(p.failures.len(), 1, "{:?}", p.failures);
    assert!(p.failures[0].contains("create_vm: Bosh::Clouds::VMCreationFailed"));
    let kinds: Vec<&str> = p.duplicates.iter().map(|d| d.kind).collect();
    assert_eq!(kinds, ["vm"], "{:?}", p.duplicates);
    let mut leaked: Vec<&str> = p.leaks.iter().map(|d| d.kind).collect();
    leaked.sort();
    assert_eq!(leaked, ["other", "vm"], "{:?}", p.leaks);
    assert_eq!(p.verdict(), Err("1 errors, 2 leaked, 1 duplicated".into()));
}
