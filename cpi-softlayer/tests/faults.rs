//! Provisioning waits and faults: the wait polls (no fixed sleep), a guest
//! that fails or never finishes provisioning is cancelled, any failure after
//! createObject leaves no guest, transient API failures are retried and
//! persistent ones end within the configured bound.

mod common;

use common::setup;
use fake_softlayer::{Action, Outcome};
use harness::{Environment, Fault};
use serde_json::json;
use std::time::Duration;

#[test]
fn provisioning_is_waited_by_polling() {
    let s = setup();
    s.short_waits(30.0, 5.0);
    s.env.fake.set_provisioning_polls(4);
    let cid = s.vm();
    assert!(s.env.vm_exists(&cid));
    let polls = s.env.fake.count("SoftLayer_Virtual_Guest::getObject");
    assert!(
        polls >= 4,
        "the CPI polled the guest until provisioned ({polls} looks)"
    );
    let guest = s
        .env
        .fake
        .with_state(|st| st.guests.values().next().cloned().unwrap());
    assert!(guest.provisioned.is_some());
}

#[test]
fn a_guest_whose_provisioning_fails_is_cancelled() {
    let s = setup();
    s.short_waits(30.0, 5.0);
    s.env.fake.set_provisioning_polls(2);
    s.env.fake.set_provisioning_outcome(Outcome::Fails);
    let stemcell = s.stemcell();
    let e = s.err(
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed");
    assert!(e.ok_to_retry);
    assert!(e.message.contains("PROVISION_FAILED"), "{e:?}");
    assert_eq!(s.guests(), 0, "the failed guest was cancelled");
}

#[test]
fn a_guest_that_never_finishes_is_cancelled_at_the_deadline() {
    let s = setup();
    s.short_waits(0.5, 5.0);
    s.env.fake.set_provisioning_outcome(Outcome::NeverFinishes);
    s.env.fake.set_provisioning_polls(1);
    let stemcell = s.stemcell();
    let e = s.err(
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed");
    assert!(e.message.contains("timed out"), "{e:?}");
    assert_eq!(s.guests(), 0);
}

#[test]
fn failures_after_create_object_leave_no_guest() {
    for (route, action) in [
        (
            "SoftLayer_Virtual_Guest::setUserMetadata",
            Action::public("injected"),
        ),
        (
            "SoftLayer_Virtual_Guest::getObject",
            Action::public("injected"),
        ),
        (
            "SoftLayer_Virtual_Guest::setUserMetadata",
            Action::Error {
                status: 404,
                code: "SoftLayer_Exception_ObjectNotFound".into(),
                message: "still not there".into(),
            },
        ),
    ] {
        let s = setup();
        s.short_waits(5.0, 0.3);
        let stemcell = s.stemcell();
        let times = if action == Action::public("injected") {
            1
        } else {
            u32::MAX
        };
        s.env.fake.fail_next(Some(route), times, action.clone());
        let e = s.err(
            "create_vm",
            s.create_vm_args(&stemcell, s.env.dynamic_network()),
        );
        assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed", "{route}: {e:?}");
        assert!(e.ok_to_retry);
        assert_eq!(s.env.fake.count("SoftLayer_Virtual_Guest::createObject"), 1);
        assert_eq!(
            s.env.fake.count("SoftLayer_Virtual_Guest::deleteObject"),
            1,
            "{route}: the guest was cancelled"
        );
        assert_eq!(s.guests(), 0, "{route}: no guest left");
    }
}

#[test]
fn the_harness_fault_after_the_vm_exists_leaves_nothing() {
    let s = setup();
    let stemcell = s.stemcell();
    assert!(s.env.inject(Fault::CreateVmAfterVmExists));
    let e = s.err(
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed");
    assert!(s.env.inventory().vms.is_empty());
}

#[test]
fn transient_failures_and_dropped_connections_are_retried() {
    let s = setup();
    s.short_waits(30.0, 10.0);
    let cid = s.vm();
    let looks = || s.env.fake.count("SoftLayer_Virtual_Guest::getObject");

    let before = looks();
    s.env.inject(Fault::Transient { times: 2 });
    assert_eq!(s.ok("has_vm", json!([cid])), json!(true));
    assert_eq!(looks(), before + 3, "two 503s, then the answer");

    s.env.fake.fail_next(
        None,
        1,
        Action::Error {
            status: 500,
            code: "SoftLayer_Exception_WebService_RateLimitExceeded".into(),
            message: "slow down".into(),
        },
    );
    s.ok("reboot_vm", json!([cid]));
    assert_eq!(
        s.env.fake.count("SoftLayer_Virtual_Guest::rebootSoft"),
        2,
        "throttled once, then rebooted"
    );

    let before = looks();
    s.env.inject(Fault::DropConnection);
    assert_eq!(s.ok("has_vm", json!([cid])), json!(true));
    assert_eq!(looks(), before + 2, "the dropped request was sent again");

    s.env.inject(Fault::Latency(Duration::from_millis(50)));
    assert_eq!(s.ok("has_vm", json!([cid])), json!(true));
}

#[test]
fn persistent_failures_end_within_the_bound() {
    let s = setup();
    let cid = s.vm();
    s.short_waits(30.0, 0.5);
    s.env.inject(Fault::Persistent);
    let e = s.err("has_vm", json!([cid]));
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(e.message.contains("503"), "{e:?}");
    let before = s.env.fake.count("SoftLayer_Virtual_Guest::getObject");
    assert!(before >= 2, "retried before giving up");
    s.env.clear_faults();
    assert_eq!(s.ok("has_vm", json!([cid])), json!(true));
}

#[test]
fn create_object_refused_before_acting_is_sent_again_once_looked_up() {
    let s = setup();
    s.short_waits(30.0, 5.0);
    let stemcell = s.stemcell();
    // Dropped before the fake acted: the lookup by hostname finds nothing,
    // so the guest is ordered again, once.
    s.env.fake.fail_next(
        Some("SoftLayer_Virtual_Guest::createObject"),
        1,
        Action::Drop,
    );
    let r = s.ok(
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    assert_eq!(s.env.fake.count("SoftLayer_Virtual_Guest::createObject"), 2);
    assert_eq!(s.env.fake.count("SoftLayer_Account::getVirtualGuests"), 1);
    assert_eq!(
        s.env.inventory().vms,
        vec![r[0].as_str().unwrap().to_owned()]
    );
}
