//! Issue 17's SoftLayer findings, each through the real binary: a create
//! that fails part-way removes what it made (a guest still provisioning is
//! cancelled through its billing item; an ordered volume is found by its
//! order and cancelled; a volume grant is taken back), creates whose answer
//! is lost are looked up by their token instead of sent again, and the rate
//! limit is waited out.

mod common;

use common::setup;
use fake_softlayer::Action;
use harness::Environment;
use serde_json::json;

#[test]
fn a_guest_still_provisioning_is_cancelled_through_its_billing_item() {
    for route in [
        "SoftLayer_Virtual_Guest::setUserMetadata",
        "SoftLayer_Virtual_Guest::getObject",
    ] {
        let s = setup();
        s.short_waits(10.0, 2.0);
        s.env.fake.set_provisioning_polls(50);
        let stemcell = s.stemcell();
        s.env
            .fake
            .fail_next(Some(route), 1, Action::public("injected refusal"));
        let e = s.err(
            "create_vm",
            s.create_vm_args(&stemcell, s.env.dynamic_network()),
        );
        assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed", "{route}: {e:?}");
        assert!(e.ok_to_retry);
        assert!(
            s.env.fake.count("SoftLayer_Virtual_Guest::deleteObject") >= 1,
            "{route}: deleteObject was tried (and refused: provisioning)"
        );
        assert_eq!(
            s.env.fake.count("SoftLayer_Billing_Item::cancelService"),
            1,
            "{route}"
        );
        assert_eq!(s.guests(), 0, "{route}: the guest is gone");
    }
}

#[test]
fn create_disk_failing_after_place_order_cancels_the_ordered_volume() {
    let s = setup();
    s.short_waits(10.0, 2.0);
    let vm = s.vm();
    s.env.fake.set_volume_polls(3);
    // The wait's first listing is refused: the order stands, its volume
    // is found by the order id and cancelled.
    s.env.fake.fail_next(
        Some("SoftLayer_Account::getIscsiNetworkStorage"),
        1,
        Action::public("injected refusal"),
    );
    let e = s.err(
        "create_disk",
        json!([10240, s.env.disk_cloud_properties(), vm]),
    );
    assert_eq!(e.kind, "Bosh::Clouds::CloudError", "{e:?}");
    assert!(e.message.contains("was cancelled"), "{e:?}");
    assert_eq!(s.env.fake.count("SoftLayer_Product_Order::placeOrder"), 1);
    assert_eq!(s.env.fake.count("SoftLayer_Billing_Item::cancelItem"), 1);
    assert!(s.env.inventory().disks.is_empty(), "no volume left");
}

#[test]
fn attach_disk_failing_after_the_grant_takes_it_back_and_a_retry_attaches() {
    let s = setup();
    let vm = s.vm();
    let disk = s.disk(&vm);
    s.env.fake.fail_next(
        Some("SoftLayer_Virtual_Guest::getAllowedHost"),
        1,
        Action::public("injected refusal"),
    );
    let e = s.err("attach_disk", json!([vm, disk]));
    assert_eq!(e.kind, "Bosh::Clouds::CloudError", "{e:?}");
    assert!(
        e.message
            .contains("authorisation for the guest was removed"),
        "{e:?}"
    );
    assert_eq!(s.env.disk_attached_to(&disk), None, "the grant is gone");
    // The director's retry finishes the attachment.
    let hint = s.ok("attach_disk", json!([vm, disk]));
    assert_eq!(hint["volume_id"], json!(disk));
    assert_eq!(s.env.disk_attached_to(&disk), Some(vm.clone()));
}

#[test]
fn creates_whose_answer_is_lost_are_found_not_repeated() {
    let s = setup();
    s.short_waits(10.0, 2.0);
    let stemcell = s.stemcell();
    s.env.fake.fail_next(
        Some("SoftLayer_Virtual_Guest::createObject"),
        1,
        Action::LoseAnswer,
    );
    let r = s.ok(
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    let vm = r[0].as_str().unwrap().to_owned();
    assert_eq!(s.env.fake.count("SoftLayer_Virtual_Guest::createObject"), 1);
    assert_eq!(
        s.env.inventory().vms,
        vec![vm.clone()],
        "one guest, the one answered"
    );

    s.env.fake.set_volume_polls(2);
    s.env.fake.fail_next(
        Some("SoftLayer_Product_Order::placeOrder"),
        1,
        Action::CutBody,
    );
    let disk = s.disk(&vm);
    assert_eq!(s.env.fake.count("SoftLayer_Product_Order::placeOrder"), 1);
    assert_eq!(s.env.inventory().disks, vec![disk.clone()], "one volume");

    s.env.fake.fail_next(
        Some("SoftLayer_Network_Storage::createSnapshot"),
        1,
        Action::LoseAnswer,
    );
    let snap = s.ok("snapshot_disk", json!([disk, {"deployment": "d"}]));
    assert_eq!(
        s.env
            .fake
            .count("SoftLayer_Network_Storage::createSnapshot"),
        1
    );
    assert_eq!(
        s.env.inventory().snapshots,
        vec![snap.as_str().unwrap().to_owned()]
    );
}

#[test]
fn the_rate_limit_is_waited_out_and_ends_retriable_at_the_deadline() {
    let s = setup();
    s.short_waits(10.0, 3.0);
    let vm = s.vm();
    // More throttled answers than the attempt budget of other failures:
    // throttling spends time, not attempts.
    s.env.fake.fail_next(None, 14, Action::rate_limited());
    assert_eq!(s.ok("has_vm", json!([vm])), json!(true));
    s.env.fake.fail_next(None, u32::MAX, Action::rate_limited());
    let e = s.err("has_vm", json!([vm]));
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(e.ok_to_retry, "{e:?}");
    assert!(e.message.contains("RateLimitExceeded"), "{e:?}");
}
