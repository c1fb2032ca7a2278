//! Every method through the real binary against the in-process fake Garden,
//! with the director's call sequences, v1 and v2 shapes.

mod common;

use common::{err_with, ok_with, World};
use harness::Environment;
use serde_json::json;

#[test]
fn info_answers_from_config_alone() {
    let w = World::new();
    let r = w.ok("info", vec![]);
    assert_eq!(
        r,
        json!({"stemcell_formats": ["warden-tar", "general-tar"], "api_version": 2})
    );
    assert!(
        w.env.fake().calls().is_empty(),
        "info touched Garden: {:?}",
        w.env.fake().calls()
    );
}

#[test]
fn deploy_recreate_resize_and_delete() {
    let w = World::new();
    let stemcell = w.stemcell();
    assert!(w.env.inventory().stemcells.contains(&stemcell));

    // Deploy (v2): the container, its IP, settings, agent.
    let vm = w.vm(&stemcell, 1);
    assert!(w.env.vm_exists(&vm));
    assert_eq!(w.env.vm_ip(&vm).as_deref(), Some("10.244.0.11"));
    let c = w.env.fake().container(&vm).unwrap();
    assert!(c.agent_started, "the agent was not started");
    let settings = w.env.agent_settings(&vm).expect("settings file");
    assert_eq!(settings["agent_id"], "agent-1");
    assert_eq!(settings["vm"]["name"], vm);
    assert_eq!(settings["networks"]["default"]["ip"], "10.244.0.11");
    assert_eq!(settings["env"]["bosh"]["password"], "vm-env-secret-pw");
    assert_eq!(settings["mbus"], w.env.agent_config().unwrap()["mbus"]);
    assert_eq!(
        settings["blobstore"],
        w.env.agent_config().unwrap()["blobstore"]
    );
    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(true));

    w.ok(
        "set_vm_metadata",
        vec![json!(vm), json!({"deployment": "d", "index": 0})],
    );
    let md = w.env.vm_metadata(&vm);
    assert_eq!(md.get("deployment").map(String::as_str), Some("d"));
    assert_eq!(md.get("index").map(String::as_str), Some("0"));
    w.ok("reboot_vm", vec![json!(vm)]);

    // A disk, attached (v2 hint), written from inside the VM.
    let disk = w
        .ok("create_disk", vec![json!(64), json!({}), json!(vm)])
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.ok("has_disk", vec![json!(disk)]), json!(true));
    assert_eq!(w.env.disk_size_mb(&disk), Some(64));
    w.ok(
        "set_disk_metadata",
        vec![json!(disk), json!({"deployment": "d", "instance_index": 0})],
    );
    assert_eq!(
        w.env
            .disk_metadata(&disk)
            .get("deployment")
            .map(String::as_str),
        Some("d")
    );
    assert_eq!(w.ok("get_disks", vec![json!(vm)]), json!([]));
    let hint = w.ok("attach_disk", vec![json!(vm), json!(disk)]);
    assert_eq!(hint, json!(format!("/warden-cpi-dev/{disk}")));
    assert_eq!(w.env.disk_attached_to(&disk).as_deref(), Some(vm.as_str()));
    assert_eq!(w.ok("get_disks", vec![json!(vm)]), json!([disk]));
    assert_eq!(
        w.env.agent_settings(&vm).unwrap()["disks"]["persistent"][&disk],
        json!(format!("/warden-cpi-dev/{disk}"))
    );
    w.env
        .write_on_disk(&vm, &disk, "data.txt", b"survives")
        .unwrap()
        .unwrap();
    let (kind, _) = w.err("delete_disk", vec![json!(disk)]);
    assert_eq!(
        kind, "Bosh::Clouds::CpiError",
        "deleting an attached disk must be refused"
    );

    // Recreate: detach, delete VM, new VM (v1 shapes), attach, data intact.
    w.ok("detach_disk", vec![json!(vm), json!(disk)]);
    assert!(w.env.agent_settings(&vm).unwrap()["disks"]["persistent"]
        .get(&disk)
        .is_none());
    let (kind, _) = w.err("detach_disk", vec![json!(vm), json!(disk)]);
    assert_eq!(kind, "Bosh::Clouds::DiskNotAttached");
    w.ok("delete_vm", vec![json!(vm)]);
    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(false));
    w.ok("delete_vm", vec![json!(vm)]);

    let v1 = w.cpi.with_versions(1, 2);
    let vm2 = ok_with(
        &v1,
        "create_vm",
        vec![
            json!("agent-2"),
            json!(stemcell),
            json!({}),
            json!({"default": w.env.dynamic_network()}),
            json!([disk]),
            json!({}),
        ],
    );
    let vm2 = vm2
        .as_str()
        .expect("v1 create_vm answers a string")
        .to_owned();
    assert!(w.env.vm_ip(&vm2).is_some_and(|ip| !ip.is_empty()));
    assert_eq!(
        ok_with(&v1, "attach_disk", vec![json!(vm2), json!(disk)]),
        json!(null),
        "v1 attach_disk answers null"
    );
    assert_eq!(
        w.env
            .read_on_disk(&vm2, &disk, "data.txt")
            .unwrap()
            .unwrap(),
        b"survives"
    );

    // Resize keeps the data; shrinking is refused.
    ok_with(&v1, "detach_disk", vec![json!(vm2), json!(disk)]);
    w.ok("resize_disk", vec![json!(disk), json!(128)]);
    assert_eq!(w.env.disk_size_mb(&disk), Some(128));
    let (kind, msg) = w.err("resize_disk", vec![json!(disk), json!(32)]);
    assert_eq!(kind, "Bosh::Clouds::NotSupported");
    assert!(msg.contains("shrinking"), "{msg}");
    w.ok("attach_disk", vec![json!(vm2), json!(disk)]);
    assert_eq!(
        w.env
            .read_on_disk(&vm2, &disk, "data.txt")
            .unwrap()
            .unwrap(),
        b"survives"
    );

    // Delete deployment with the disk still attached.
    w.ok("delete_vm", vec![json!(vm2)]);
    assert_eq!(w.env.disk_attached_to(&disk), None);
    w.ok("delete_disk", vec![json!(disk)]);
    assert_eq!(w.ok("has_disk", vec![json!(disk)]), json!(false));
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
    w.assert_no_secrets();
}

#[test]
fn resurrection_takes_the_disk_with_its_data() {
    let w = World::new();
    let stemcell = w.stemcell();
    let vm = w.vm(&stemcell, 2);
    let disk = w
        .ok("create_disk", vec![json!(32), json!({}), json!(null)])
        .as_str()
        .unwrap()
        .to_owned();
    w.ok("attach_disk", vec![json!(vm), json!(disk)]);
    w.env
        .write_on_disk(&vm, &disk, "keep", b"42")
        .unwrap()
        .unwrap();

    w.env.destroy_vm_out_of_band(&vm);
    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(false));
    w.ok("delete_vm", vec![json!(vm)]);
    let vm2 = w.vm(&stemcell, 2);
    w.ok("attach_disk", vec![json!(vm2), json!(disk)]);
    assert_eq!(
        w.env.read_on_disk(&vm2, &disk, "keep").unwrap().unwrap(),
        b"42"
    );

    w.ok("delete_vm", vec![json!(vm2)]);
    w.ok("delete_disk", vec![json!(disk)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn missing_things_answer_as_the_director_expects() {
    let w = World::new();
    let ghost = w.env.unknown_cid("vm");
    assert_eq!(w.ok("has_vm", vec![json!(ghost)]), json!(false));
    w.ok("delete_vm", vec![json!(ghost)]);
    let (kind, _) = w.err("reboot_vm", vec![json!(ghost)]);
    assert_eq!(kind, "Bosh::Clouds::VMNotFound");
    assert_eq!(w.ok("has_disk", vec![json!(ghost)]), json!(false));
    let (kind, _) = w.err("attach_disk", vec![json!(ghost), json!(ghost)]);
    assert_eq!(kind, "Bosh::Clouds::DiskNotFound");
    let (kind, _) = w.err("snapshot_disk", vec![json!(ghost), json!({})]);
    assert_eq!(kind, "Bosh::Clouds::NotImplemented");
    let (kind, msg) = w.err(
        "create_vm",
        vec![
            json!("a"),
            json!("no-such-stemcell"),
            json!({}),
            json!({"default": w.env.manual_network(3)}),
            json!([]),
            json!({}),
        ],
    );
    assert_eq!(kind, "Bosh::Clouds::VMCreationFailed", "{msg}");
    let (bad, key) = w.env.bad_vm_cloud_properties();
    let stemcell = w.stemcell();
    let (kind, msg) = w.err(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            bad,
            json!({"default": w.env.manual_network(3)}),
            json!([]),
            json!({}),
        ],
    );
    assert_eq!(kind, "Bosh::Clouds::VMCreationFailed");
    assert!(msg.contains(key), "{msg}");
    let corrupt = w.env.root().join("corrupt.tgz");
    std::fs::write(&corrupt, b"not a gzip").unwrap();
    let (kind, _) = w.err("create_stemcell", vec![json!(corrupt), json!({})]);
    assert_eq!(kind, "Bosh::Clouds::CloudError");
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn registry_delivery_for_stemcell_api_v1() {
    let w = World::new();
    let stemcell = w.stemcell();
    let v1 = w.cpi.with_versions(2, 1);
    let r = ok_with(
        &v1,
        "create_vm",
        vec![
            json!("agent-r"),
            json!(stemcell),
            json!({}),
            json!({"default": w.env.manual_network(4)}),
            json!([]),
            json!({}),
        ],
    );
    let vm = r[0].as_str().unwrap().to_owned();
    let settings = w
        .registry
        .settings(&vm)
        .expect("settings in the registry")
        .unwrap();
    assert_eq!(settings["agent_id"], "agent-r");
    let pointer = w
        .env
        .agent_settings(&vm)
        .expect("user data in the container");
    assert!(
        pointer["registry"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("http://"),
        "{pointer}"
    );
    let disk = ok_with(&v1, "create_disk", vec![json!(16), json!({}), json!(vm)])
        .as_str()
        .unwrap()
        .to_owned();
    ok_with(&v1, "attach_disk", vec![json!(vm), json!(disk)]);
    let settings = w.registry.settings(&vm).unwrap().unwrap();
    assert!(
        settings["disks"]["persistent"].get(&disk).is_some(),
        "{settings}"
    );
    ok_with(&v1, "detach_disk", vec![json!(vm), json!(disk)]);
    ok_with(&v1, "delete_vm", vec![json!(vm)]);
    assert!(
        w.registry.settings(&vm).is_none(),
        "registry settings left after delete_vm"
    );
    ok_with(&v1, "delete_disk", vec![json!(disk)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
    w.assert_no_secrets();
}

#[test]
fn unix_socket_config_is_refused_clearly_when_bad() {
    let w = World::new();
    let bad = w.env.root().join("bad.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.env.config_path()).unwrap()).unwrap();
    cfg["Warden"]["ConnectNetwork"] = json!("udp");
    std::fs::write(&bad, cfg.to_string()).unwrap();
    let cpi = w
        .cpi
        .with_args(vec![format!("-configPath={}", bad.display())]);
    let (kind, msg) = err_with(&cpi, "has_vm", vec![json!("x")]);
    assert_eq!(kind, "Bosh::Clouds::CpiError");
    assert!(msg.contains("Warden.ConnectNetwork"), "{msg}");
}

/// A new disk file is sparse: mkfs writes its metadata, not a zeroed
/// journal (32 MiB per GiB) nor inode tables, since the file reads as zeros.
#[test]
fn a_new_disk_takes_little_host_space() {
    use std::os::unix::fs::MetadataExt;
    let w = World::new();
    let disk = w.ok("create_disk", vec![json!(1024), json!({}), json!(null)]);
    let file = w.env.root().join("disks").join(disk.as_str().unwrap());
    let allocated = std::fs::metadata(&file).unwrap().blocks() * 512;
    assert_eq!(w.env.disk_size_mb(disk.as_str().unwrap()), Some(1024));
    assert!(
        allocated < 8 << 20,
        "a new 1 GiB disk holds {allocated} bytes on the host"
    );
    w.ok("delete_disk", vec![disk]);
    w.assert_empty();
}
