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
    let summary = run(&*env, &registry, &Options::default(), &mut out).expect("suite runs");
    let text = String::from_utf8_lossy(&out);
    println!("{text}\n{}", summary.line());
    assert_eq!(summary.count(Status::Fail), 0, "{text}");
    assert!(summary.count(Status::Pass) > 0, "{text}");
}
