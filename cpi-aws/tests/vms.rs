//! VM lifecycle through the real binary against moto, checked in the cloud.

mod common;

use harness::Environment;
use serde_json::json;

#[test]
fn create_vm_delivers_settings_in_user_data_and_delete_leaves_nothing() {
    let Some(f) = common::fixture() else { return };
    let before = harness::Environment::inventory(&f.env);
    let stemcell = f.light_stemcell();
    let vm = f.create_vm(&stemcell, 1, vec![]);

    assert!(harness::Environment::vm_exists(&f.env, &vm));
    assert_eq!(
        harness::Environment::vm_ip(&f.env, &vm).as_deref(),
        Some("10.0.0.11")
    );
    let facts = f.env.inspector().instance_facts(&vm).unwrap();
    assert_eq!(facts["instance_type"], "m5.large");
    assert_eq!(facts["key_name"], "bosh");
    assert_eq!(facts["subnet_id"], f.env.seed().subnet);
    assert_eq!(facts["availability_zone"], f.env.seed().zone);

    // The agent's settings, as the VM reads them from user data.
    let s = harness::Environment::agent_settings(&f.env, &vm).expect("user data holds settings");
    assert_eq!(s["agent_id"], "agent-1");
    assert!(s["vm"]["name"].as_str().unwrap().starts_with("vm-"));
    assert_eq!(s["networks"]["default"]["ip"], "10.0.0.11");
    assert_eq!(s["networks"]["default"]["use_dhcp"], true);
    assert!(s["networks"]["default"]["mac"].is_string(), "{s}");
    // The root device the image has (moto's RegisterImage keeps /dev/sda1).
    let root = f
        .env
        .inspector()
        .image_root_device(&f.env.seed().light_ami)
        .unwrap();
    assert_eq!(s["disks"]["system"], root);
    assert_eq!(s["disks"]["ephemeral"], "/dev/sdb");
    assert_eq!(s["disks"]["persistent"], json!({}));
    assert_eq!(s["env"], common::Fixture::env_hash());
    assert_eq!(
        s["mbus"],
        format!("https://mbus:{}@0.0.0.0:6868", env_aws::MBUS_PASSWORD)
    );
    assert_eq!(s["ntp"], json!(["0.pool.ntp.org", "1.pool.ntp.org"]));
    assert_eq!(s["blobstore"]["provider"], "dav");
    assert_eq!(s["dns"]["nameserver"], json!(["10.0.0.2"]));

    assert_eq!(f.ok("has_vm", vec![json!(vm)]), json!(true));
    f.ok(
        "set_vm_metadata",
        vec![
            json!(vm),
            json!({"name": "web/0", "deployment": "cf", "index": 0}),
        ],
    );
    let tags = harness::Environment::vm_metadata(&f.env, &vm);
    assert_eq!(tags.get("Name").map(String::as_str), Some("web/0"));
    assert_eq!(tags.get("deployment").map(String::as_str), Some("cf"));
    assert_eq!(tags.get("index").map(String::as_str), Some("0"));
    f.ok("reboot_vm", vec![json!(vm)]);

    f.ok("delete_vm", vec![json!(vm)]);
    assert_eq!(f.ok("has_vm", vec![json!(vm)]), json!(false));
    f.ok("delete_vm", vec![json!(vm)]);
    f.ok("delete_stemcell", vec![json!(stemcell)]);
    assert_eq!(
        harness::Environment::inventory(&f.env),
        before,
        "everything made is gone"
    );
}

#[test]
fn has_vm_is_false_for_unknown_and_lost_vms() {
    let Some(f) = common::fixture() else { return };
    assert_eq!(
        f.ok("has_vm", vec![json!("i-0123456789abcdef0")]),
        json!(false)
    );
    f.ok("delete_vm", vec![json!("i-0123456789abcdef0")]);
    let stemcell = f.light_stemcell();
    let vm = f.create_vm(&stemcell, 2, vec![]);
    harness::Environment::destroy_vm_out_of_band(&f.env, &vm);
    assert_eq!(f.ok("has_vm", vec![json!(vm)]), json!(false));
    f.ok("delete_vm", vec![json!(vm)]);
    f.err(
        "reboot_vm",
        vec![json!("i-0123456789abcdef0")],
        "Bosh::Clouds::VMNotFound",
    );
    f.err(
        "set_vm_metadata",
        vec![json!(vm), json!({"a": "b"})],
        "Bosh::Clouds::VMNotFound",
    );
}

#[test]
fn dynamic_network_and_v1_answers() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let v1 = f.cpi.with_versions(1, 1);
    let r = v1
        .call(
            "create_vm",
            vec![
                json!("agent-dyn"),
                json!(stemcell),
                f.env.vm_cloud_properties(),
                json!({"default": harness::Environment::dynamic_network(&f.env)}),
                json!([]),
                json!({}),
            ],
        )
        .unwrap();
    assert!(r.error.is_none(), "{:?}", r.error);
    let vm = r
        .result
        .as_str()
        .expect("v1 create_vm answers the cid")
        .to_owned();
    let ip = harness::Environment::vm_ip(&f.env, &vm).expect("dynamic network got an IP");
    assert!(ip.starts_with("10.0.0."), "{ip}");
    // Stemcell API v1: the settings are in the registry, user data points there.
    let ud = harness::Environment::agent_settings(&f.env, &vm).unwrap();
    assert!(
        ud["registry"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("http://"),
        "{ud}"
    );
    assert!(
        ud.get("agent_id").is_none(),
        "user data holds only the pointer: {ud}"
    );
    let settings = f
        .registry
        .settings(&vm)
        .expect("registry has settings")
        .unwrap();
    assert_eq!(settings["agent_id"], "agent-dyn");
    f.ok("delete_vm", vec![json!(vm)]);
}

#[test]
fn bad_cloud_properties_fail_naming_the_key_and_leave_nothing() {
    let Some(f) = common::fixture() else { return };
    let before = harness::Environment::inventory(&f.env);
    let stemcell = f.light_stemcell();
    let (props, key) = harness::Environment::bad_vm_cloud_properties(&f.env);
    let r = f.call(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            props,
            json!({"default": f.env.manual_network(3)}),
            json!([]),
            json!({}),
        ],
    );
    let e = r.error.expect("refused");
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed", "{}", e.message);
    assert!(e.message.contains(key), "{}", e.message);

    let mut missing_subnet = f.env.manual_network(3);
    missing_subnet["cloud_properties"]["subnet"] = json!("subnet-00000000");
    let e = f.err(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            f.env.vm_cloud_properties(),
            json!({"default": missing_subnet}),
            json!([]),
            json!({}),
        ],
        "Bosh::Clouds::VMCreationFailed",
    );
    assert!(e.message.contains("subnet"), "{}", e.message);
    let e = f.err(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            json!({}),
            json!({"default": f.env.manual_network(3)}),
            json!([]),
            json!({}),
        ],
        "Bosh::Clouds::CpiError",
    );
    assert!(e.message.contains("instance_type"), "{}", e.message);
    f.ok("delete_stemcell", vec![json!(stemcell)]);
    common::assert_nothing_left(&before, &harness::Environment::inventory(&f.env));
}

#[test]
fn calculate_vm_cloud_properties_picks_a_fitting_type() {
    let Some(f) = common::fixture() else { return };
    let r = f.ok(
        "calculate_vm_cloud_properties",
        vec![json!({"cpu": 2, "ram": 4096, "ephemeral_disk_size": 10240})],
    );
    assert_eq!(
        r,
        json!({"instance_type": "t3.medium", "ephemeral_disk": {"size": 10240}})
    );
}

/// Issue 18: with `static` keys the SDK's profile files are not read. The
/// config and credentials files are FIFOs with no writer here, so any open
/// of them would block the call until the bound kills it.
#[test]
fn static_credentials_read_no_profile_file() {
    let Some(f) = common::fixture() else { return };
    let dir = tempfile::tempdir().unwrap();
    for name in ["config", "credentials"] {
        let path = dir.path().join(name);
        let ok = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", path.display());
    }
    let mut command = harness::Environment::cpi(&f.env);
    let file = |n: &str| dir.path().join(n).display().to_string();
    command.env.push(("AWS_CONFIG_FILE".into(), file("config")));
    command
        .env
        .push(("AWS_SHARED_CREDENTIALS_FILE".into(), file("credentials")));
    command
        .env
        .push(("HOME".into(), dir.path().display().to_string()));
    let cpi = harness::cpi::Cpi::new(command, std::time::Duration::from_secs(30)).unwrap();
    let r = cpi
        .call("has_vm", vec![serde_json::json!("i-0123456789abcdef0")])
        .expect("answers without opening the profile files");
    assert_eq!(r.result, serde_json::json!(false), "{:?}", r.error);
}
