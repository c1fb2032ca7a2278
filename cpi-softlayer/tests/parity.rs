//! The Go CPI's cloud_properties rules, through the real binary and read
//! back from the fake: VLANs chosen by subnet, one private and at most one
//! public VLAN, a private VLAN required, the keys it refused or set itself
//! refused by name, and create-env's hostname (deployed_by_boshcli).

mod common;

use common::setup;
use harness::Environment;
use serde_json::{json, Value};

fn create(s: &common::Setup, props: Value, network: Value) -> harness::cpi::Reply {
    let stemcell = s.stemcell();
    s.call(
        "create_vm",
        json!(["agent-p", stemcell, props, {"default": network}, [], {}]),
    )
}

fn dynamic(cloud_properties: Value) -> Value {
    json!({"type": "dynamic", "cloud_properties": cloud_properties})
}

#[test]
fn subnet_ids_choose_their_vlans() {
    let s = setup();
    // 6001 and 6002 are the primary subnets of VLANs 1001 and 1002.
    let r = create(
        &s,
        s.env.vm_cloud_properties(),
        dynamic(json!({"subnet_ids": [6001, 6002], "source_policy_routing": true})),
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    let g = s
        .env
        .fake
        .with_state(|st| st.guests.values().next().cloned().unwrap());
    assert_eq!((g.private_vlan, g.public_vlan), (1001, Some(1002)));
    let settings = s.env.agent_settings(r.result[0].as_str().unwrap()).unwrap();
    assert_eq!(
        settings["networks"]["default"]["cloud_properties"]["source_policy_routing"],
        json!(true),
        "handed to the agent"
    );
    let r = create(
        &s,
        s.env.vm_cloud_properties(),
        dynamic(json!({"subnet_ids": [999]})),
    );
    let e = r.error.unwrap();
    assert!(
        e.message.contains("subnet_ids") && e.message.contains("999"),
        "{e:?}"
    );
}

#[test]
fn vlan_rules_are_the_go_cpis_and_refusals_name_the_key() {
    let s = setup();
    let props = s.env.vm_cloud_properties();
    let cases = [
        (
            props.clone(),
            dynamic(json!({"vlan_ids": [1002]})),
            "private VLAN",
        ),
        (
            props.clone(),
            dynamic(json!({"vlan_ids": [1001, 1003]})),
            "vlan_ids",
        ),
        (
            props.clone(),
            dynamic(json!({"vlan_ids": ["x"]})),
            "vlan_ids",
        ),
        (
            json!({"hostname_prefix": "a", "datacenter": "lon02", "flavor_key_name": "B1_2X8X25", "cpu": 2}),
            dynamic(json!({"vlan_ids": [1001]})),
            "flavor_key_name",
        ),
        (
            json!({"hostname_prefix": "a", "datacenter": "lon02", "hostname": "fixed"}),
            dynamic(json!({"vlan_ids": [1001]})),
            "hostname",
        ),
        (
            json!({"hostname_prefix": "a", "datacenter": "lon02", "max_network_speed": 0}),
            dynamic(json!({"vlan_ids": [1001]})),
            "max_network_speed",
        ),
    ];
    for (props, network, key) in cases {
        let r = create(&s, props.clone(), network.clone());
        let e = r
            .error
            .unwrap_or_else(|| panic!("{props} {network} was accepted"));
        assert!(e.message.contains(key), "{key}: {e:?}");
        assert!(
            e.kind == "Bosh::Clouds::CloudError" || e.kind == "Bosh::Clouds::CpiError",
            "{e:?}"
        );
    }
    assert_eq!(s.guests(), 0, "nothing ordered");
    assert_eq!(s.env.fake.count("SoftLayer_Virtual_Guest::createObject"), 0);
    let vm = s.vm();
    let e = s.err(
        "create_disk",
        json!([10240, {"type": "performance", "iops": 1000}, vm]),
    );
    assert!(e.message.contains("cloud_properties.type"), "{e:?}");
    assert!(s.env.inventory().disks.is_empty());
}

#[test]
fn create_env_names_the_guest_after_its_prefix_alone() {
    let s = setup();
    let mut props = s.env.vm_cloud_properties();
    props["deployed_by_boshcli"] = json!(true);
    props["hostname_prefix"] = json!("bosh-director");
    let r = create(&s, props, s.env.dynamic_network());
    assert!(r.error.is_none(), "{:?}", r.error);
    let g = s
        .env
        .fake
        .with_state(|st| st.guests.values().next().cloned().unwrap());
    assert_eq!(g.hostname, "bosh-director");
}

#[test]
fn os_reload_reuses_the_guest_a_dynamic_ip_names() {
    let s = setup();
    s.env.fake.set_provisioning_polls(2);
    let first = s.vm();
    let ip = s.env.vm_ip(&first).unwrap();
    let stemcell = s.stemcell();
    let mut network = s.env.dynamic_network();
    network["ip"] = json!(ip);
    let mut props = s.env.vm_cloud_properties();
    props["ssh_keys"] = json!([77]);
    let r = s.ok(
        "create_vm",
        json!(["agent-reloaded", stemcell, props, {"default": network}, [], {}]),
    );
    assert_eq!(r[0], json!(first), "the same guest");
    assert_eq!(r[1]["default"]["ip"], json!(ip));
    assert_eq!(s.env.fake.count("SoftLayer_Virtual_Guest::createObject"), 1);
    let g = s
        .env
        .fake
        .with_state(|st| st.guests.values().next().cloned().unwrap());
    assert_eq!(g.os_reloads, 1);
    assert!(g.provisioned.is_some(), "waited until reprovisioned");
    assert_eq!(g.ssh_key_ids, vec![77]);
    assert!(g.hostname.starts_with("conformance-"), "{}", g.hostname);
    let settings = s.env.agent_settings(&first).unwrap();
    assert_eq!(settings["agent_id"], json!("agent-reloaded"));

    // No guest has the IP: refused by key, nothing ordered.
    network["ip"] = json!("10.112.10.99");
    let e = s.err(
        "create_vm",
        json!(["agent-x", stemcell, s.env.vm_cloud_properties(), {"default": network}, [], {}]),
    );
    assert!(e.message.contains("networks.default.ip"), "{e:?}");
    assert_eq!(s.guests(), 1);

    // disable_os_reload: a new guest, as for any dynamic network.
    s.env
        .edit_config(|c| c["cloud"]["properties"]["softlayer"]["disable_os_reload"] = json!(true))
        .unwrap();
    network["ip"] = json!(ip);
    let r = s.ok(
        "create_vm",
        json!(["agent-y", stemcell, s.env.vm_cloud_properties(), {"default": network}, [], {}]),
    );
    assert_ne!(r[0], json!(first));
    assert_eq!(s.guests(), 2);
}

#[test]
fn the_configured_ssh_public_key_is_added_once_and_given_to_every_guest() {
    let s = setup();
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests operator@example";
    s.env
        .edit_config(|c| c["cloud"]["properties"]["softlayer"]["ssh_public_key"] = json!(key))
        .unwrap();
    s.env.fake.fail_next(
        Some("SoftLayer_Security_Ssh_Key::createObject"),
        1,
        fake_softlayer::Action::LoseAnswer,
    );
    let a = s.vm();
    let b = s.vm();
    let keys = s.env.fake.with_state(|st| {
        st.ssh_keys
            .values()
            .map(|k| (k.id, k.label.clone(), k.key.clone()))
            .collect::<Vec<_>>()
    });
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!((keys[0].1.as_str(), keys[0].2.as_str()), ("bosh_cpi", key));
    for vm in [a, b] {
        let id: u64 = vm.parse().unwrap();
        let g = s.env.fake.with_state(|st| st.guests[&id].clone());
        assert_eq!(g.ssh_key_ids, vec![keys[0].0]);
    }
    let stemcell = s.stemcell();
    s.env
        .edit_config(|c| {
            c["cloud"]["properties"]["softlayer"]["ssh_public_key"] = json!("not a key")
        })
        .unwrap();
    let e = s.err(
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    assert!(e.message.contains("softlayer.ssh_public_key"), "{e:?}");
}

#[test]
fn vcappassword_fills_a_missing_env_password_and_vps_is_refused() {
    let s = setup();
    s.env
        .edit_config(|c| {
            c["cloud"]["properties"]["agent"]["vcappassword"] = json!("$6$hashed-vcap")
        })
        .unwrap();
    let stemcell = s.stemcell();
    let net = s.env.dynamic_network();
    let r = s.ok(
        "create_vm",
        json!(["agent-v", stemcell, s.env.vm_cloud_properties(), {"default": net}, [], {}]),
    );
    let settings = s.env.agent_settings(r[0].as_str().unwrap()).unwrap();
    assert_eq!(settings["env"]["bosh"]["password"], json!("$6$hashed-vcap"));
    let vm = s.vm(); // the director's env.bosh.password wins
    let settings = s.env.agent_settings(&vm).unwrap();
    assert_eq!(
        settings["env"]["bosh"]["password"],
        json!("hashed-vcap-password")
    );

    s.env
        .edit_config(|c| c["cloud"]["properties"]["softlayer"]["enable_vps"] = json!(true))
        .unwrap();
    let e = s.err("has_vm", json!([vm]));
    assert!(e.message.contains("softlayer.enable_vps"), "{e:?}");
}
