//! Issue 17's fault-sweep findings, each through the real binary against
//! moto with the env-aws proxy failing one EC2 action: a cleanup that must
//! not depend on a look-up, an "already done" answer that is success, and
//! creates whose lost answers must not make a second resource.

mod common;

use env_aws::proxy::Effect;
use harness::Environment;
use serde_json::{json, Value};

fn create_vm_args(f: &common::Fixture, stemcell: &str, n: u8) -> Vec<Value> {
    vec![
        json!("agent-1"),
        json!(stemcell),
        f.env.vm_cloud_properties(),
        json!({"default": f.env.manual_network(n)}),
        json!([]),
        common::Fixture::env_hash(),
    ]
}

fn new_ids(before: &[String], after: &[String]) -> Vec<String> {
    after
        .iter()
        .filter(|x| !before.contains(x))
        .cloned()
        .collect()
}

#[test]
fn create_vm_failing_on_describe_after_run_instances_leaves_no_instance_or_volume() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    // Every DescribeInstances fails (500, through all its retries) for a
    // while after the instance is launched: the wait for it to run fails,
    // and so does the cleanup's own look-up of it.
    f.env
        .proxy()
        .after("RunInstances", "DescribeInstances", Effect::ServerError, 12);
    let e = f.err(
        "create_vm",
        create_vm_args(&f, &stemcell, 1),
        "Bosh::Clouds::VMCreationFailed",
    );
    assert!(e.message.contains("DescribeInstances"), "{}", e.message);
    let acted = f.env.proxy().acted();
    assert!(
        acted.len() >= 8,
        "the fault acted out on the look-ups of the wait and of the cleanup: {acted:?}"
    );
    f.env.proxy().clear();
    // Terminated instances no longer count; the root and ephemeral volumes
    // and the ENI must be gone too.
    common::assert_nothing_left(&before, &f.env.inventory());
    f.ok("delete_stemcell", vec![json!(stemcell)]);
}

#[test]
fn attach_disk_whose_answer_was_lost_answers_the_device_at_once() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let vm = f.create_vm(&stemcell, 1, vec![]);
    let other = f.create_vm(&stemcell, 2, vec![]);
    let disk = f.ok("create_disk", vec![json!(1024), json!({}), json!(vm)]);

    // EC2 attaches, the answer is lost, the SDK-level retry is told
    // `VolumeInUse: ... attached to <this instance>`.
    f.env.proxy().on("AttachVolume", Effect::LoseAnswer, 1);
    let started = std::time::Instant::now();
    let hint = f.ok("attach_disk", vec![json!(vm), disk.clone()]);
    assert_eq!(f.env.proxy().acted().len(), 1, "the answer was lost once");
    // m5 is Nitro: the hint is the volume's NVMe path.
    let nvme = format!(
        "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{}",
        disk.as_str().unwrap().replace('-', "")
    );
    assert_eq!(hint, json!(nvme));
    assert_eq!(
        f.env.disk_attached_to(disk.as_str().unwrap()).as_deref(),
        Some(vm.as_str())
    );
    // Not the 45 s of retries the sweep saw (generous: no timing claim,
    // only that it did not wait the VolumeInUse backoff out).
    assert!(started.elapsed() < std::time::Duration::from_secs(40));

    // Attached to another VM: a clear error at once, naming it.
    let e = f.err(
        "attach_disk",
        vec![json!(other), disk.clone()],
        "Bosh::Clouds::CloudError",
    );
    assert!(
        e.message.contains("attached to another VM") && e.message.contains(&vm),
        "{}",
        e.message
    );

    // The director's retry of the same attach is success too.
    assert_eq!(
        f.ok("attach_disk", vec![json!(vm), disk.clone()]),
        json!(nvme)
    );
    // Detach and delete whose answers are lost: done, not an error.
    f.env.proxy().on("DetachVolume", Effect::LoseAnswer, 1);
    f.ok("detach_disk", vec![json!(vm), disk.clone()]);
    assert_eq!(f.env.disk_attached_to(disk.as_str().unwrap()), None);
    f.env.proxy().on("DeleteVolume", Effect::LoseAnswer, 1);
    f.ok("delete_disk", vec![disk.clone()]);
    assert_eq!(f.env.proxy().acted().len(), 3);
    assert!(!f.env.disk_exists(disk.as_str().unwrap()));
    f.ok("delete_vm", vec![json!(vm)]);
    f.ok("delete_vm", vec![json!(other)]);
}

#[test]
fn creates_whose_answers_are_lost_make_exactly_one_resource() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let start = f.env.inventory();

    // The instance and its ENI: each answer lost once.
    f.env
        .proxy()
        .on("CreateNetworkInterface", Effect::LoseAnswer, 1);
    f.env.proxy().on("RunInstances", Effect::LoseAnswer, 1);
    let r = f.ok("create_vm", create_vm_args(&f, &stemcell, 1));
    let vm = r[0].as_str().unwrap().to_owned();
    assert_eq!(f.env.proxy().acted().len(), 2);
    let after_vm = f.env.inventory();
    assert_eq!(new_ids(&start.vms, &after_vm.vms), vec![vm.clone()]);
    let enis = new_ids(&start.other, &after_vm.other);
    assert_eq!(enis.len(), 1, "one ENI: {enis:?}");
    assert_eq!(f.env.vm_ip(&vm).as_deref(), Some("10.0.0.11"));

    // A volume.
    f.env.proxy().clear();
    f.env.proxy().on("CreateVolume", Effect::LoseAnswer, 1);
    let disk = f.ok("create_disk", vec![json!(2048), json!({}), json!(vm)]);
    assert_eq!(f.env.proxy().acted().len(), 1);
    let after_disk = f.env.inventory();
    assert_eq!(
        new_ids(&after_vm.disks, &after_disk.disks),
        vec![disk.as_str().unwrap().to_owned()]
    );

    // A snapshot: the sweep's leak was a second one.
    f.env.proxy().clear();
    f.env.proxy().on("CreateSnapshot", Effect::LoseAnswer, 1);
    let snap = f.ok(
        "snapshot_disk",
        vec![
            disk.clone(),
            json!({"deployment": "cf", "job": "db", "index": 0}),
        ],
    );
    assert_eq!(f.env.proxy().acted().len(), 1);
    let after_snap = f.env.inventory();
    assert_eq!(
        new_ids(&after_disk.snapshots, &after_snap.snapshots),
        vec![snap.as_str().unwrap().to_owned()]
    );
    // A 500 before EC2 acted: the look-up finds nothing and it is re-sent.
    f.env.proxy().clear();
    f.env.proxy().on("CreateSnapshot", Effect::ServerError, 1);
    let snap2 = f.ok("snapshot_disk", vec![disk.clone(), json!({})]);
    assert_ne!(snap2, snap);
    assert_eq!(
        new_ids(&after_snap.snapshots, &f.env.inventory().snapshots),
        vec![snap2.as_str().unwrap().to_owned()]
    );
    f.env.proxy().clear();

    f.ok("delete_snapshot", vec![snap]);
    f.ok("delete_snapshot", vec![snap2]);
    f.ok("delete_disk", vec![disk]);
    f.ok("delete_vm", vec![json!(vm)]);
    common::assert_nothing_left(&start, &f.env.inventory());
    f.ok("delete_stemcell", vec![json!(stemcell)]);
}

#[test]
fn heavy_stemcell_import_and_register_with_lost_answers_make_one_image() {
    let Some(f) = common::fixture() else { return };
    let start = f.env.inventory();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    {
        let file = std::fs::File::create(&image).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let root_img: Vec<u8> = (0..(1024 * 1024 + 77)).map(|i| (i % 251) as u8).collect();
        let mut header = tar::Header::new_gnu();
        header.set_size(root_img.len() as u64);
        header.set_cksum();
        tar.append_data(&mut header, "root.img", &root_img[..])
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
    f.env.proxy().on("ebs:StartSnapshot", Effect::LoseAnswer, 1);
    f.env.proxy().on("RegisterImage", Effect::LoseAnswer, 1);
    let cid = f.ok(
        "create_stemcell",
        vec![
            json!(image.display().to_string()),
            f.env.heavy_stemcell_properties().unwrap(),
        ],
    );
    assert_eq!(f.env.proxy().acted().len(), 2);
    let after = f.env.inventory();
    assert_eq!(
        new_ids(&start.stemcells, &after.stemcells),
        vec![cid.as_str().unwrap().to_owned()]
    );
    f.env.proxy().clear();
    f.ok("delete_stemcell", vec![cid]);
    common::assert_nothing_left(&start, &f.env.inventory());
}
