//! create_vm's cloud_properties and networks as the cloud records them, and
//! its cleanup when a step after RunInstances fails.

mod common;

use harness::{Environment, Fault};
use serde_json::json;

#[test]
fn vip_security_groups_tags_and_root_disk_reach_the_cloud() {
    let Some(f) = common::fixture() else { return };
    let before = f.env.inventory();
    let stemcell = f.light_stemcell();
    let seed = f.env.seed().clone();
    let mut props = f.env.vm_cloud_properties();
    props["security_groups"] = json!([seed.security_group]); // by id
    props["tags"] = json!({"team": "core", "cost-center": 42});
    props["root_disk"] = json!({"size": 20480, "type": "gp3"});
    props["source_dest_check"] = json!(false);
    props["key_name"] = json!("bosh");
    let networks = json!({
        "default": f.env.manual_network(5),
        "public": {"type": "vip", "ip": seed.elastic_ip, "cloud_properties": {}}
    });
    let r = f.ok(
        "create_vm",
        vec![
            json!("agent-vip"),
            json!(stemcell),
            props,
            networks.clone(),
            json!([]),
            json!({}),
        ],
    );
    let vm = r[0].as_str().unwrap().to_owned();
    assert_eq!(r[1], networks, "v2 answers the networks it was given");

    let facts = f.env.inspector().instance_facts(&vm).unwrap();
    assert_eq!(
        facts["public_ip"], seed.elastic_ip,
        "the vip's elastic IP is associated"
    );
    assert_eq!(facts["security_groups"], seed.security_group);
    let tags = f.env.vm_metadata(&vm);
    assert_eq!(tags.get("team").map(String::as_str), Some("core"));
    assert_eq!(tags.get("cost-center").map(String::as_str), Some("42"));
    // The root volume has the size asked for, the ephemeral one too.
    let volumes: Vec<String> = f
        .ok("get_disks", vec![json!(vm)])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let sizes: Vec<u64> = volumes
        .iter()
        .filter_map(|v| f.env.disk_size_mb(v))
        .collect();
    assert!(sizes.contains(&20480), "root disk 20 GiB: {sizes:?}");
    assert!(sizes.contains(&4096), "ephemeral disk 4 GiB: {sizes:?}");
    let s = f.env.agent_settings(&vm).unwrap();
    assert_eq!(s["networks"]["public"]["ip"], seed.elastic_ip);

    f.ok("delete_vm", vec![json!(vm)]);
    f.ok("delete_stemcell", vec![json!(stemcell)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn security_groups_by_name_and_a_missing_one_is_named() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    let mut net = f.env.manual_network(6);
    net["cloud_properties"]["security_groups"] = json!(["bosh"]);
    let r = f.ok(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            f.env.vm_cloud_properties(),
            json!({"default": net}),
            json!([]),
            json!({}),
        ],
    );
    let vm = r[0].as_str().unwrap().to_owned();
    assert_eq!(
        f.env.inspector().instance_facts(&vm).unwrap()["security_groups"],
        f.env.seed().security_group
    );
    f.ok("delete_vm", vec![json!(vm)]);

    let mut net = f.env.manual_network(6);
    net["cloud_properties"]["security_groups"] = json!(["no-such-group"]);
    let e = f.err(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            f.env.vm_cloud_properties(),
            json!({"default": net}),
            json!([]),
            json!({}),
        ],
        "Bosh::Clouds::VMCreationFailed",
    );
    assert!(e.message.contains("no-such-group"), "{}", e.message);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn failure_after_run_instances_terminates_the_vm_and_removes_its_eni() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    assert!(f.env.inject(Fault::CreateVmAfterVmExists));
    let r = f.call(
        "create_vm",
        vec![
            json!("a"),
            json!(stemcell),
            f.env.vm_cloud_properties(),
            json!({"default": f.env.manual_network(7)}),
            json!([]),
            json!({}),
        ],
    );
    f.env.clear_faults();
    let e = r.error.expect("create_vm fails");
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed", "{}", e.message);
    common::assert_nothing_left(&before, &f.env.inventory());
    // The IP is free again: the same create now works.
    let vm = f.create_vm(&stemcell, 7, vec![]);
    f.ok("delete_vm", vec![json!(vm)]);
}

#[test]
fn throttling_is_retried_and_a_dead_cloud_ends_within_the_bound() {
    let Some(f) = common::fixture() else { return };
    assert!(f.env.inject(Fault::Transient { times: 2 }));
    assert_eq!(
        f.ok("has_vm", vec![json!("i-0123456789abcdef0")]),
        json!(false)
    );
    assert!(f.env.inject(Fault::Persistent));
    let e = f.err(
        "has_vm",
        vec![json!("i-0123456789abcdef0")],
        "Bosh::Clouds::CloudError",
    );
    assert!(e.message.contains("DescribeInstances"), "{}", e.message);
    f.env.clear_faults();
    assert!(f.env.inject(Fault::DropConnection));
    assert_eq!(
        f.ok("has_vm", vec![json!("i-0123456789abcdef0")]),
        json!(false)
    );
}
