//! The job properties and cloud_properties the Go warden CPI honours, each
//! proven by reading the fake Garden's state back (issue 15): ports,
//! privileged, start_containers_with_systemd, ExpandStemcellTarball, the
//! bind-mount directories, and what is refused by name.

mod common;

use common::{err_with, ok_with, World};
use harness::Environment;
use serde_json::{json, Value};

fn create_vm(cpi: &harness::cpi::Cpi, w: &World, stemcell: &str, props: Value, n: u8) -> String {
    let r = ok_with(
        cpi,
        "create_vm",
        vec![
            json!("agent-p"),
            json!(stemcell),
            props,
            json!({"default": w.env.manual_network(n)}),
            json!([]),
            json!({}),
        ],
    );
    r[0].as_str().unwrap().to_owned()
}

#[test]
fn ports_are_forwarded_with_net_in_and_udp_is_refused_by_name() {
    let w = World::new();
    let stemcell = w.stemcell();
    let props = json!({"ports": [80, {"host": 8080, "container": 80}, {"host": "9000-9002"},
                                 {"host": "2222", "container": "22", "protocol": "tcp"}]});
    let vm = create_vm(&w.cpi, &w, &stemcell, props, 1);
    let c = w.env.fake().container(&vm).unwrap();
    assert_eq!(
        c.mapped_ports,
        vec![
            (80, 80),
            (8080, 80),
            (9000, 9000),
            (9001, 9001),
            (9002, 9002),
            (2222, 22)
        ]
    );
    let (kind, msg) = err_with(
        &w.cpi,
        "create_vm",
        vec![
            json!("agent-p"),
            json!(stemcell),
            json!({"ports": [{"host": 53, "protocol": "udp"}]}),
            json!({"default": w.env.manual_network(2)}),
            json!([]),
            json!({}),
        ],
    );
    assert_eq!(kind, "Bosh::Clouds::NotSupported", "{msg}");
    assert!(msg.contains("cloud_properties.ports[0].protocol"), "{msg}");
    assert_eq!(
        w.env.inventory().vms,
        vec![vm.clone()],
        "the refused VM made nothing"
    );
    w.ok("delete_vm", vec![json!(vm)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn containers_are_privileged_unless_cloud_properties_say_not() {
    let w = World::new();
    let stemcell = w.stemcell();
    let a = create_vm(&w.cpi, &w, &stemcell, json!({}), 1);
    let b = create_vm(&w.cpi, &w, &stemcell, json!({"privileged": false}), 2);
    assert!(w.env.fake().container(&a).unwrap().privileged);
    assert!(!w.env.fake().container(&b).unwrap().privileged);
    let (kind, msg) = err_with(
        &w.cpi,
        "create_vm",
        vec![
            json!("agent-p"),
            json!(stemcell),
            json!({"privileged": "no"}),
            json!({"default": w.env.manual_network(3)}),
            json!([]),
            json!({}),
        ],
    );
    assert_eq!(kind, "Bosh::Clouds::VMCreationFailed");
    assert!(msg.contains("cloud_properties.privileged"), "{msg}");
    for vm in [a, b] {
        w.ok("delete_vm", vec![json!(vm)]);
    }
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn bind_mounts_follow_the_job_s_directories() {
    let w = World::new();
    let stemcell = w.stemcell();
    let vm = create_vm(&w.cpi, &w, &stemcell, json!({}), 1);
    let c = w.env.fake().container(&vm).unwrap();
    let eph = w.env.root().join("ephemeral").join(&vm);
    let pers = w.env.root().join("persistent").join(&vm);
    assert_eq!(
        c.bind_mounts,
        vec![
            (
                eph.display().to_string(),
                "/var/vcap/data".to_owned(),
                false
            ),
            (
                pers.display().to_string(),
                "/warden-cpi-dev".to_owned(),
                false
            ),
        ]
    );
    assert!(c.agent_started && c.agent_starts == 1);
    // Another guest path for the persistent disks: the hint follows it.
    let cpi = w.cpi_with("guest.json", |c| {
        c["Actions"]["GuestPersistentBindMountsDir"] = json!("/var/vcap/store-disks")
    });
    let vm2 = create_vm(&cpi, &w, &stemcell, json!({}), 2);
    let c = w.env.fake().container(&vm2).unwrap();
    assert_eq!(c.bind_mounts[1].1, "/var/vcap/store-disks");
    let disk = ok_with(&cpi, "create_disk", vec![json!(16), json!({}), json!(vm2)]);
    let hint = ok_with(&cpi, "attach_disk", vec![json!(vm2), disk.clone()]);
    assert_eq!(
        hint,
        json!(format!("/var/vcap/store-disks/{}", disk.as_str().unwrap()))
    );
    ok_with(&cpi, "detach_disk", vec![json!(vm2), disk.clone()]);
    ok_with(&cpi, "delete_disk", vec![disk]);
    for vm in [vm, vm2] {
        w.ok("delete_vm", vec![json!(vm)]);
    }
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn start_containers_with_systemd_mounts_cgroups_and_leaves_the_agent_to_init() {
    let w = World::new();
    let stemcell = w.stemcell();
    let cpi = w.cpi_with("systemd.json", |c| {
        c["start_containers_with_systemd"] = json!(true)
    });
    let vm = create_vm(&cpi, &w, &stemcell, json!({}), 1);
    let c = w.env.fake().container(&vm).unwrap();
    assert!(
        c.bind_mounts
            .iter()
            .any(|(s, d, ro)| s == "/sys/fs/cgroup" && d == "/sys/fs/cgroup" && !ro),
        "{:?}",
        c.bind_mounts
    );
    assert_eq!(c.agent_starts, 0, "systemd starts the agent, not the CPI");
    assert!(
        c.commands.iter().any(|s| s == "umount /etc/hosts"),
        "{:?}",
        c.commands
    );
    assert!(
        w.env.agent_settings(&vm).is_some(),
        "the settings are written"
    );
    // Off (the default): the agent is started by the CPI, no cgroup mount.
    let vm2 = create_vm(&w.cpi, &w, &stemcell, json!({}), 2);
    let c = w.env.fake().container(&vm2).unwrap();
    assert_eq!(c.agent_starts, 1);
    assert!(!c.bind_mounts.iter().any(|(s, _, _)| s == "/sys/fs/cgroup"));
    for vm in [vm, vm2] {
        w.ok("delete_vm", vec![json!(vm)]);
    }
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn expand_stemcell_tarball_false_keeps_the_image_a_tarball() {
    let w = World::new();
    let cpi = w.cpi_with("gunzip.json", |c| {
        c["Actions"]["ExpandStemcellTarball"] = json!(false)
    });
    let stemcell = ok_with(&cpi, "create_stemcell", vec![json!(w.image), json!({})]);
    let stemcell = stemcell.as_str().unwrap().to_owned();
    let path = w.env.root().join("stemcells").join(&stemcell);
    assert!(path.is_file(), "not a tarball file: {}", path.display());
    let entries: Vec<String> = tar::Archive::new(std::fs::File::open(&path).unwrap())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(entries.iter().any(|e| e == "etc/hostname"), "{entries:?}");
    let vm = create_vm(&cpi, &w, &stemcell, json!({}), 1);
    let c = w.env.fake().container(&vm).unwrap();
    assert!(
        c.rootfs.join("etc/hostname").is_file(),
        "the image plugin unpacked it"
    );
    assert!(c.agent_started);
    ok_with(&cpi, "delete_vm", vec![json!(vm)]);
    ok_with(&cpi, "delete_stemcell", vec![json!(stemcell)]);
    assert!(!path.exists());
    // The default (true) unpacks into a directory.
    let s2 = w.stemcell();
    assert!(w.env.root().join("stemcells").join(&s2).is_dir());
    w.ok("delete_stemcell", vec![json!(s2)]);
    w.assert_empty();
}

#[test]
fn the_job_rendered_config_is_read_and_bad_keys_are_named() {
    let w = World::new();
    // The incumbent's template renders Blobstore.Provider.
    let cpi = w.cpi_with("provider.json", |c| {
        let b = c["Actions"]["Agent"]["Blobstore"].as_object_mut().unwrap();
        let kind = b.remove("Type").unwrap();
        b.insert("Provider".into(), kind);
    });
    let stemcell = w.stemcell();
    let vm = create_vm(&cpi, &w, &stemcell, json!({"unknown_key": 1}), 1);
    let settings = w.env.agent_settings(&vm).unwrap();
    assert_eq!(settings["blobstore"]["provider"], "dav");
    let warned = cpi.transcript().iter().any(|c| {
        c.method == "create_vm" && c.stderr.contains("cloud_properties.unknown_key: not used")
    });
    assert!(warned, "an unknown cloud_properties key is warned about");
    for (name, edit, key) in [
        (
            "no-mbus.json",
            Box::new(|c: &mut Value| {
                c["Actions"]["Agent"]
                    .as_object_mut()
                    .unwrap()
                    .remove("Mbus");
            }) as Box<dyn FnOnce(&mut Value)>,
            "Actions.Agent.Mbus",
        ),
        (
            "bad-expand.json",
            Box::new(|c: &mut Value| c["Actions"]["ExpandStemcellTarball"] = json!("yes")),
            "ExpandStemcellTarball",
        ),
        (
            "bad-systemd.json",
            Box::new(|c: &mut Value| c["start_containers_with_systemd"] = json!("true")),
            "start_containers_with_systemd",
        ),
    ] {
        let cpi = w.cpi_with(name, edit);
        let (kind, msg) = err_with(&cpi, "has_vm", vec![json!(vm)]);
        assert_eq!(kind, "Bosh::Clouds::CpiError", "{name}: {msg}");
        assert!(msg.contains(key), "{name}: {msg}");
    }
    w.ok("delete_vm", vec![json!(vm)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}
