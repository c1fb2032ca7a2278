//! Disk and snapshot methods through the real binary: ordering in the
//! guest's datacenter, iSCSI authorisation and the v2 hint, detach, resize,
//! metadata, snapshots, cancellation, not-found answers.

mod common;

use common::setup;
use harness::Environment;
use serde_json::json;

#[test]
fn disk_lifecycle_on_one_vm_and_the_next() {
    let s = setup();
    let vm = s.vm();
    let disk = s.disk(&vm);
    assert!(s.env.disk_exists(&disk));
    assert_eq!(
        s.env.disk_size_mb(&disk),
        Some(20 * 1024),
        "10 GB rounds up to the 20 GB minimum"
    );
    let volume = s
        .env
        .fake
        .with_state(|st| st.volumes.values().next().cloned().unwrap());
    assert_eq!(
        (volume.datacenter.as_str(), volume.iops, volume.snapshot_gb),
        ("lon02", Some(1000), 20)
    );
    assert_eq!(s.ok("has_disk", json!([disk])), json!(true));
    assert_eq!(s.ok("get_disks", json!([vm])), json!([]));

    let hint = s.ok("attach_disk", json!([vm, disk]));
    assert_eq!(s.env.disk_attached_to(&disk).as_deref(), Some(vm.as_str()));
    let host = s.env.fake.with_state(|st| {
        st.guests
            .values()
            .next()
            .unwrap()
            .allowed_host
            .clone()
            .unwrap()
    });
    assert_eq!(hint["iscsi_settings"]["initiator_name"], json!(host.name));
    assert_eq!(hint["iscsi_settings"]["username"], json!(host.username));
    assert_eq!(hint["iscsi_settings"]["password"], json!(host.password));
    assert_eq!(hint["iscsi_settings"]["target"], json!(volume.target_ip));
    assert_eq!(hint["lun"], json!(volume.lun_id.to_string()));
    assert_eq!(s.ok("get_disks", json!([vm])), json!([disk]));
    // Attaching again is harmless.
    s.ok("attach_disk", json!([vm, disk]));
    s.env
        .write_on_disk(&vm, &disk, "data", b"kept")
        .unwrap()
        .unwrap();

    s.ok(
        "set_disk_metadata",
        json!([disk, {"director": "d", "instance_index": 0}]),
    );
    assert_eq!(
        s.env
            .disk_metadata(&disk)
            .get("instance_index")
            .map(String::as_str),
        Some("0")
    );

    let e = s.err("delete_disk", json!([disk]));
    assert!(
        e.message.contains("attached"),
        "an attached disk is not deleted: {e:?}"
    );

    s.ok("detach_disk", json!([vm, disk]));
    assert_eq!(s.env.disk_attached_to(&disk), None);
    let e = s.err("detach_disk", json!([vm, disk]));
    assert_eq!(e.kind, "Bosh::Clouds::DiskNotAttached");

    // The disk survives its VM and carries its data to the next one.
    s.ok("delete_vm", json!([vm]));
    let vm2 = s.vm();
    s.ok("attach_disk", json!([vm2, disk]));
    assert_eq!(
        s.env.read_on_disk(&vm2, &disk, "data").unwrap().unwrap(),
        b"kept"
    );
    // Deleting the VM with the disk still attached releases the disk.
    let removals = s
        .env
        .fake
        .count("SoftLayer_Network_Storage::removeAccessFromVirtualGuest");
    s.ok("delete_vm", json!([vm2]));
    assert_eq!(s.env.disk_attached_to(&disk), None);
    assert_eq!(
        s.env
            .fake
            .count("SoftLayer_Network_Storage::removeAccessFromVirtualGuest"),
        removals + 1,
        "delete_vm removes the guest's volume authorisations itself"
    );

    s.ok("delete_disk", json!([disk]));
    assert!(!s.env.disk_exists(&disk));
    assert_eq!(s.ok("has_disk", json!([disk])), json!(false));
    s.ok("delete_disk", json!([disk]));
}

#[test]
fn disks_without_a_vm_need_a_datacenter_and_accept_tiers() {
    let s = setup();
    let e = s.err("create_disk", json!([1024, {"iops": 100}, null]));
    assert!(e.message.contains("datacenter"), "{e:?}");
    let cid = s.ok(
        "create_disk",
        json!([51200, {"datacenter": "dal10", "tier": 4}, null]),
    );
    let v = s
        .env
        .fake
        .with_state(|st| st.volumes.values().next().cloned().unwrap());
    assert_eq!(cid, json!(v.id.to_string()));
    assert_eq!(
        (v.datacenter.as_str(), v.tier.as_deref(), v.capacity_gb),
        ("dal10", Some("WRITEHEAVY_TIER"), 50)
    );
    let e = s.err(
        "create_disk",
        json!([1024, {"datacenter": "dal10", "tier": 3}, null]),
    );
    assert!(e.message.contains("tier"), "{e:?}");
    let e = s.err(
        "create_disk",
        json!([1024, {"datacenter": "dal10", "iops": 150}, null]),
    );
    assert!(
        e.message.contains("150 IOPS"),
        "the API's refusal is carried: {e:?}"
    );
}

#[test]
fn disk_waits_until_the_volume_is_listed() {
    let s = setup();
    s.env.fake.set_volume_polls(3);
    let cid = s.ok(
        "create_disk",
        json!([1024, {"datacenter": "lon02", "iops": 100}, null]),
    );
    assert!(s.env.disk_exists(cid.as_str().unwrap()));
    assert!(
        s.env
            .fake
            .count("SoftLayer_Account::getIscsiNetworkStorage")
            >= 3
    );
}

#[test]
fn resize_grows_and_refuses_to_shrink() {
    let s = setup();
    let vm = s.vm();
    let disk = s.disk(&vm);
    s.ok("resize_disk", json!([disk, 40 * 1024]));
    assert_eq!(s.env.disk_size_mb(&disk), Some(40 * 1024));
    let e = s.err("resize_disk", json!([disk, 25 * 1024]));
    assert_eq!(e.kind, "Bosh::Clouds::NotSupported");
    assert!(e.message.contains("shrink"), "{e:?}");
    assert_eq!(s.env.disk_size_mb(&disk), Some(40 * 1024));
}

#[test]
fn snapshots_where_the_volume_has_snapshot_space() {
    let s = setup();
    let vm = s.vm();
    let disk = s.disk(&vm);
    let snap = s.ok("snapshot_disk", json!([disk, {"deployment": "dep"}]));
    let snap = snap.as_str().unwrap().to_owned();
    assert_eq!(s.env.inventory().snapshots, vec![snap.clone()]);
    s.ok("delete_snapshot", json!([snap]));
    assert!(s.env.inventory().snapshots.is_empty());
    s.ok("delete_snapshot", json!([snap]));

    let bare = s
        .ok("create_disk", json!([1024, {"iops": 100}, vm]))
        .as_str()
        .unwrap()
        .to_owned();
    let e = s.err("snapshot_disk", json!([bare, {}]));
    assert_eq!(e.kind, "Bosh::Clouds::NotImplemented");
    assert!(e.message.contains("snapshot_space"), "{e:?}");
}

#[test]
fn missing_disks_answer_disk_not_found() {
    let s = setup();
    let vm = s.vm();
    let missing = s.env.unknown_cid("disk");
    assert_eq!(s.ok("has_disk", json!([missing])), json!(false));
    s.ok("delete_disk", json!([missing]));
    for (method, args) in [
        ("attach_disk", json!([vm, missing])),
        ("detach_disk", json!([vm, missing])),
        ("resize_disk", json!([missing, 40960])),
        ("set_disk_metadata", json!([missing, {"a": "b"}])),
        ("snapshot_disk", json!([missing, {}])),
    ] {
        let e = s.err(method, args);
        assert_eq!(e.kind, "Bosh::Clouds::DiskNotFound", "{method}: {e:?}");
    }
    let disk = s.disk(&vm);
    let e = s.err("attach_disk", json!([s.env.unknown_cid("vm"), disk]));
    assert_eq!(e.kind, "Bosh::Clouds::VMNotFound");
    let e = s.err("create_disk", json!([1024, {}, s.env.unknown_cid("vm")]));
    assert_eq!(e.kind, "Bosh::Clouds::VMNotFound");
}
