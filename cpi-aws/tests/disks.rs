//! Persistent disks through the real binary against moto, checked in the cloud.

mod common;

use harness::Environment;
use serde_json::json;

#[test]
fn disk_survives_vm_recreation_and_deletes_cleanly() {
    let Some(f) = common::fixture() else { return };
    let before = f.env.inventory();
    let stemcell = f.light_stemcell();
    let vm = f.create_vm(&stemcell, 1, vec![]);

    let disk = f.ok(
        "create_disk",
        vec![json!(2048), f.env.disk_cloud_properties(), json!(vm)],
    );
    let disk = disk.as_str().unwrap().to_owned();
    assert!(f.env.disk_exists(&disk));
    assert_eq!(f.env.disk_size_mb(&disk), Some(2048));
    assert_eq!(f.env.inspector().volume(&disk).unwrap().volume_type, "gp3");
    assert_eq!(f.ok("has_disk", vec![json!(disk)]), json!(true));
    assert_eq!(f.env.disk_attached_to(&disk), None);

    let hint = f.ok("attach_disk", vec![json!(vm), json!(disk)]);
    assert_eq!(f.env.disk_attached_to(&disk).as_deref(), Some(vm.as_str()));
    // m5 is Nitro: the agent finds the volume by its NVMe id.
    assert_eq!(
        hint,
        json!(format!(
            "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{}",
            disk.replace('-', "")
        ))
    );
    let disks = f.ok("get_disks", vec![json!(vm)]);
    assert!(disks.as_array().unwrap().contains(&json!(disk)), "{disks}");
    // Attaching again is harmless and answers the same hint.
    assert_eq!(f.ok("attach_disk", vec![json!(vm), json!(disk)]), hint);

    f.ok(
        "set_disk_metadata",
        vec![
            json!(disk),
            json!({"deployment": "cf", "instance_name": "web/0"}),
        ],
    );
    assert_eq!(
        f.env
            .disk_metadata(&disk)
            .get("deployment")
            .map(String::as_str),
        Some("cf")
    );

    let snapshot = f.ok(
        "snapshot_disk",
        vec![
            json!(disk),
            json!({"deployment": "cf", "job": "web", "index": "0"}),
        ],
    );
    let snapshot = snapshot.as_str().unwrap().to_owned();
    assert!(f.env.inventory().snapshots.contains(&snapshot));
    f.ok("delete_snapshot", vec![json!(snapshot)]);
    assert!(!f.env.inventory().snapshots.contains(&snapshot));
    f.ok("delete_snapshot", vec![json!(snapshot)]);

    // Deleting an attached disk is refused.
    f.err("delete_disk", vec![json!(disk)], "Bosh::Clouds::CloudError");

    // Recreate: detach, delete the VM, a new VM, the same disk.
    f.ok("detach_disk", vec![json!(vm), json!(disk)]);
    assert_eq!(f.env.disk_attached_to(&disk), None);
    f.err(
        "detach_disk",
        vec![json!(vm), json!(disk)],
        "Bosh::Clouds::DiskNotAttached",
    );
    f.ok("delete_vm", vec![json!(vm)]);
    assert!(f.env.disk_exists(&disk), "the disk outlives its VM");
    let vm2 = f.create_vm(&stemcell, 1, vec![disk.clone()]);
    f.ok("attach_disk", vec![json!(vm2), json!(disk)]);
    assert_eq!(f.env.disk_attached_to(&disk).as_deref(), Some(vm2.as_str()));

    // Delete deployment: the VM goes with the disk attached, then the disk.
    f.ok("delete_vm", vec![json!(vm2)]);
    f.ok("delete_disk", vec![json!(disk)]);
    assert!(!f.env.disk_exists(&disk));
    assert_eq!(f.ok("has_disk", vec![json!(disk)]), json!(false));
    f.err(
        "delete_disk",
        vec![json!(disk)],
        "Bosh::Clouds::DiskNotFound",
    );
    f.ok("delete_stemcell", vec![json!(stemcell)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn resize_grows_and_refuses_to_shrink() {
    let Some(f) = common::fixture() else { return };
    let disk = f.ok("create_disk", vec![json!(1024), json!({}), json!(null)]);
    let disk = disk.as_str().unwrap().to_owned();
    assert_eq!(
        f.env.inspector().volume(&disk).unwrap().volume_type,
        "gp3",
        "gp3 is the default"
    );
    f.ok("resize_disk", vec![json!(disk), json!(3072)]);
    assert_eq!(f.env.disk_size_mb(&disk), Some(3072));
    let e = f.err(
        "resize_disk",
        vec![json!(disk), json!(1024)],
        "Bosh::Clouds::NotSupported",
    );
    assert!(e.message.contains("shrink"), "{}", e.message);
    assert_eq!(f.env.disk_size_mb(&disk), Some(3072));
    f.ok("delete_disk", vec![json!(disk)]);
}

#[test]
fn disk_with_type_iops_and_encryption() {
    let Some(f) = common::fixture() else { return };
    let disk = f.ok(
        "create_disk",
        vec![
            json!(4096),
            json!({"type": "io1", "iops": 300, "encrypted": true, "tags": {"team": "x"}}),
            json!(null),
        ],
    );
    let disk = disk.as_str().unwrap().to_owned();
    let v = f.env.inspector().volume(&disk).unwrap();
    assert_eq!(v.volume_type, "io1");
    assert_eq!(
        f.env.disk_metadata(&disk).get("team").map(String::as_str),
        Some("x")
    );
    f.ok("delete_disk", vec![json!(disk)]);
}

#[test]
fn registry_settings_follow_attach_and_detach_for_stemcell_api_v1() {
    let Some(f) = common::fixture() else { return };
    let v1 = f.cpi.with_versions(1, 1);
    let stemcell = f.light_stemcell();
    let r = v1
        .call(
            "create_vm",
            vec![
                json!("agent-v1"),
                json!(stemcell),
                f.env.vm_cloud_properties(),
                json!({"default": f.env.manual_network(4)}),
                json!([]),
                json!({}),
            ],
        )
        .unwrap();
    let vm = r.result.as_str().unwrap().to_owned();
    let disk = v1
        .call("create_disk", vec![json!(1024), json!({}), json!(vm)])
        .unwrap()
        .result;
    let disk = disk.as_str().unwrap().to_owned();
    let r = v1
        .call("attach_disk", vec![json!(vm), json!(disk)])
        .unwrap();
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.result, json!(null), "v1 attach_disk answers null");
    let s = f.registry.settings(&vm).unwrap().unwrap();
    assert!(s["disks"]["persistent"][&disk].is_string(), "{s}");
    v1.call("detach_disk", vec![json!(vm), json!(disk)])
        .unwrap();
    let s = f.registry.settings(&vm).unwrap().unwrap();
    assert!(s["disks"]["persistent"].get(&disk).is_none(), "{s}");
    v1.call("delete_vm", vec![json!(vm)]).unwrap();
    assert!(
        f.registry.settings(&vm).is_none(),
        "settings removed with the VM"
    );
    v1.call("delete_disk", vec![json!(disk)]).unwrap();
}

#[test]
fn xen_instance_types_get_the_device_name_as_hint() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let mut props = f.env.vm_cloud_properties();
    props["instance_type"] = json!("t2.medium");
    let r = f.ok(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            props,
            json!({"default": f.env.manual_network(8)}),
            json!([]),
            json!({}),
        ],
    );
    let vm = r[0].as_str().unwrap().to_owned();
    let d1 = f.ok("create_disk", vec![json!(1024), json!({}), json!(vm)]);
    let d2 = f.ok("create_disk", vec![json!(1024), json!({}), json!(vm)]);
    assert_eq!(
        f.ok("attach_disk", vec![json!(vm), d1.clone()]),
        json!("/dev/sdf")
    );
    assert_eq!(
        f.ok("attach_disk", vec![json!(vm), d2.clone()]),
        json!("/dev/sdg"),
        "the next free device"
    );
    f.ok("delete_vm", vec![json!(vm)]);
    f.ok("delete_disk", vec![d1]);
    f.ok("delete_disk", vec![d2]);
}
