//! The cloud-neutral conformance suite against cpi-openstack on the fake.

use harness::suite::{run, Options, Status};
use std::path::Path;

#[test]
fn the_conformance_suite_passes_on_the_fake() {
    let registry = harness::registry::RegistryServer::start().expect("registry");
    let env = fake_openstack::start_environment(
        Path::new(env!("CARGO_BIN_EXE_cpi-openstack")),
        registry.endpoint(),
    )
    .expect("environment");
    let mut out = Vec::new();
    // CONFORMANCE_ONLY=group,check narrows the run when chasing one failure.
    let only: Vec<String> = std::env::var("CONFORMANCE_ONLY")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let options = Options {
        only,
        ..Options::default()
    };
    let summary = run(&*env, &registry, &options, &mut out).expect("suite runs");
    let text = String::from_utf8_lossy(&out);
    println!("{text}\n{}", summary.line());
    let failed: Vec<_> = summary
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.id.clone())
        .collect();
    assert!(failed.is_empty(), "failed: {failed:?}\n{text}");
    assert!(summary.count(Status::Pass) > 0, "{text}");
}
