//! The suite against the reference cloud: everything passes when nothing is
//! broken, and each group has a check that fails when its behaviour breaks.

use harness::registry::RegistryServer;
use harness::suite::{self, Options, Status, Summary};
use reference_cloud::{Break, ReferenceEnvironment};
use std::path::Path;

fn run(breaks: &[Break], only: &[&str]) -> (Summary, String) {
    let registry = RegistryServer::start().expect("registry");
    let env = ReferenceEnvironment::start(
        Path::new(env!("CARGO_BIN_EXE_cpi-reference")),
        registry.endpoint(),
        breaks,
    )
    .expect("environment");
    let options = Options {
        only: only.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    };
    let mut out = Vec::new();
    let summary = suite::run(&env, &registry, &options, &mut out).expect("suite runs");
    (summary, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn the_whole_suite_passes_against_the_unbroken_reference_cloud() {
    let (summary, out) = run(&[], &[]);
    println!("{out}");
    assert_eq!(summary.count(Status::Fail), 0, "{out}");
    assert_eq!(summary.count(Status::Skip), 0, "{out}");
    assert_eq!(summary.results.len(), harness::checks::all().len());
    assert_eq!(
        summary.line(),
        format!("cpi-reference: {} passed, 0 failed", summary.results.len())
    );
}

/// Runs `only` with `broken` and expects `failing` to fail.
fn fails(broken: Break, only: &[&str], failing: &str) {
    let (summary, out) = run(&[broken], only);
    println!("with {broken:?}:\n{out}");
    assert_eq!(
        summary.status_of(failing),
        Some(Status::Fail),
        "{failing} did not fail with {broken:?}:\n{out}"
    );
}

#[test]
fn protocol_fails_when_info_touches_the_cloud() {
    fails(
        Break::InfoTouchesCloud,
        &["protocol/info_without_cloud"],
        "protocol/info_without_cloud",
    );
}

#[test]
fn stemcells_fail_when_a_bad_image_leaks() {
    fails(
        Break::StemcellLeaksOnBadImage,
        &["stemcells/corrupt_image_refused"],
        "stemcells/corrupt_image_refused",
    );
    fails(
        Break::StemcellLeaksOnBadImage,
        &["stemcells/truncated_image_refused"],
        "stemcells/truncated_image_refused",
    );
}

#[test]
fn vms_fail_when_has_vm_errors_or_delete_vm_fails_or_settings_are_wrong() {
    fails(
        Break::HasVmErrorsForMissing,
        &["vms/has_vm_lifecycle"],
        "vms/has_vm_lifecycle",
    );
    fails(
        Break::DeleteVmMissingFails,
        &["vms/delete_vm_twice"],
        "vms/delete_vm_twice",
    );
    fails(
        Break::SettingsDropNtp,
        &["vms/settings_user_data_v2"],
        "vms/settings_user_data_v2",
    );
    fails(
        Break::SettingsDropNtp,
        &["vms/settings_registry_v1"],
        "vms/settings_registry_v1",
    );
}

#[test]
fn disks_fail_on_an_empty_hint_or_lost_data() {
    fails(
        Break::AttachEmptyHint,
        &["disks/attach_write_detach_reattach"],
        "disks/attach_write_detach_reattach",
    );
    fails(
        Break::AttachEmptyHint,
        &["protocol/result_shapes_v2"],
        "protocol/result_shapes_v2",
    );
    fails(
        Break::DiskDataLostOnReattach,
        &["disks/attach_write_detach_reattach"],
        "disks/attach_write_detach_reattach",
    );
}

#[test]
fn flows_fail_when_disks_cannot_coexist_or_outlive_their_vm() {
    fails(
        Break::SingleAttach,
        &["flows/create_env_disk_migration"],
        "flows/create_env_disk_migration",
    );
    fails(
        Break::DeleteVmKeepsAttachments,
        &["flows/delete_deployment"],
        "flows/delete_deployment",
    );
}

#[test]
fn faults_fail_on_a_leak_or_no_retry() {
    fails(
        Break::CreateVmLeaksOnFailure,
        &["faults/create_vm_failure_cleans_up"],
        "faults/create_vm_failure_cleans_up",
    );
    fails(
        Break::NoRetry,
        &["faults/transient_error_retried"],
        "faults/transient_error_retried",
    );
}

#[test]
fn hygiene_fails_on_a_logged_secret_or_a_leaked_port() {
    fails(
        Break::SecretLogged,
        &["hygiene/no_secrets_logged"],
        "hygiene/no_secrets_logged",
    );
    fails(
        Break::DeleteVmLeaksPort,
        &["flows/deploy", "hygiene/inventory_restored"],
        "hygiene/inventory_restored",
    );
}
