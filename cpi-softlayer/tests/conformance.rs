//! The cloud-neutral conformance suite against cpi-softlayer on the fake
//! SoftLayer: every check passes or is skipped for a stated reason.

use harness::registry::RegistryServer;
use harness::suite::{self, Options, Status};
use std::path::Path;

#[test]
fn conformance_suite_passes() {
    let registry = RegistryServer::start().expect("registry");
    let env = fake_softlayer::start_environment(
        Path::new(env!("CARGO_BIN_EXE_cpi-softlayer")),
        registry.endpoint(),
    )
    .expect("environment");
    let mut out = Vec::new();
    let summary =
        suite::run(env.as_ref(), &registry, &Options::default(), &mut out).expect("suite runs");
    let text = String::from_utf8_lossy(&out);
    println!("{text}\n{}", summary.line());
    let failed: Vec<String> = summary
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| format!("{}: {}", r.id, r.reason.clone().unwrap_or_default()))
        .collect();
    assert!(
        failed.is_empty(),
        "{}\nfailed:\n{}",
        summary.line(),
        failed.join("\n")
    );
    assert!(summary.count(Status::Pass) > 20, "{}", summary.line());
}
