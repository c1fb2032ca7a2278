//! VM methods through the real binary: creation with settings delivered
//! both ways, existence, reboot, metadata, deletion, not-found answers.

mod common;

use common::setup;
use harness::Environment;
use serde_json::{json, Value};

#[test]
fn info_needs_no_cloud() {
    let s = setup();
    s.env
        .edit_config(|c| {
            c["cloud"]["properties"]["softlayer"]["api_endpoint"] =
                json!("http://127.0.0.1:9/rest/v3.1")
        })
        .unwrap();
    let info = s.ok("info", json!([]));
    assert_eq!(
        info,
        json!({"stemcell_formats": ["softlayer-light", "softlayer-ovf"], "api_version": 2})
    );
    // Heavy stemcells are claimed only with object storage configured.
    s.env
        .edit_config(|c| {
            let sl = c["cloud"]["properties"]["softlayer"]
                .as_object_mut()
                .unwrap();
            sl.remove("swift_endpoint");
            sl.remove("swift_username");
        })
        .unwrap();
    let info = s.ok("info", json!([]));
    assert_eq!(
        info,
        json!({"stemcell_formats": ["softlayer-light"], "api_version": 2})
    );
    assert!(s.env.fake.calls().is_empty());
}

#[test]
fn light_stemcells_reference_existing_templates() {
    let s = setup();
    let (id, gid) = s.env.fake.seeded_template();
    assert_eq!(
        s.ok(
            "create_stemcell",
            json!(["/x", {"virtual-disk-image-id": id}])
        ),
        json!(id.to_string())
    );
    assert_eq!(
        s.ok(
            "create_stemcell",
            json!(["/x", {"virtual-disk-image-id": id.to_string()}])
        ),
        json!(id.to_string())
    );
    assert_eq!(
        s.ok(
            "create_stemcell",
            json!(["/x", {"virtual-disk-image-uuid": gid}])
        ),
        json!(id.to_string())
    );
    let e = s.err(
        "create_stemcell",
        json!(["/x", {"virtual-disk-image-id": 424242}]),
    );
    assert!(
        e.message.contains("virtual-disk-image-id") && e.message.contains("424242"),
        "{e:?}"
    );
    let e = s.err(
        "create_stemcell",
        json!(["/x", {"virtual-disk-image-uuid": "no-such-gid"}]),
    );
    assert!(e.message.contains("no-such-gid"), "{e:?}");
    let e = s.err(
        "create_stemcell",
        json!(["/x", {"infrastructure": "softlayer", "os-code": "UBUNTU_22_64"}]),
    );
    assert_eq!(e.kind, "Bosh::Clouds::CpiError");
    assert!(e.message.contains("datacenter-name"), "{e:?}");
    // Deleting a light stemcell (even twice) leaves the template alone.
    s.ok("delete_stemcell", json!([id.to_string()]));
    s.ok("delete_stemcell", json!([id.to_string()]));
    assert!(s.env.fake.with_state(|st| st.templates.contains_key(&id)));
}

#[test]
fn create_vm_delivers_settings_in_user_metadata_and_answers_networks() {
    let s = setup();
    let stemcell = s.stemcell();
    let r = s.ok(
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    let cid = r[0].as_str().unwrap();
    assert!(s.env.vm_exists(cid));
    let ip = s.env.vm_ip(cid).unwrap();
    assert_eq!(
        r[1]["default"]["ip"],
        json!(ip),
        "the v2 answer carries the dynamic IP"
    );
    assert_eq!(r[1]["default"]["gateway"], json!("10.112.10.1"));
    let settings = s.env.agent_settings(cid).expect("user metadata set");
    assert_eq!(settings["agent_id"], "agent-1");
    assert_eq!(settings["vm"]["name"], json!(cid));
    assert_eq!(settings["env"]["bosh"]["password"], "hashed-vcap-password");
    assert_eq!(settings["mbus"], s.env.agent_config().unwrap()["mbus"]);
    assert_eq!(settings["blobstore"]["provider"], "dav");
    assert_eq!(settings["disks"]["system"], "/dev/xvda");
    assert_eq!(settings["networks"]["default"]["type"], "dynamic");
    // The guest is what the cloud_properties asked for.
    let guest = s
        .env
        .fake
        .with_state(|st| st.guests.values().next().cloned().unwrap());
    assert_eq!(
        (
            guest.cpus,
            guest.memory_mb,
            guest.hourly,
            guest.datacenter.as_str()
        ),
        (2, 4096, true, "lon02")
    );
    assert!(
        guest.hostname.starts_with("conformance-"),
        "{}",
        guest.hostname
    );
    assert_eq!((guest.private_vlan, guest.public_vlan), (1001, Some(1002)));
    assert_eq!(s.ok("has_vm", json!([cid])), json!(true));
}

#[test]
fn create_vm_with_a_manual_network_gets_the_ip_asked_for() {
    let s = setup();
    let stemcell = s.stemcell();
    let net = s.env.manual_network(3);
    let r = s.ok("create_vm", s.create_vm_args(&stemcell, net.clone()));
    let cid = r[0].as_str().unwrap();
    assert_eq!(s.env.vm_ip(cid), net["ip"].as_str().map(str::to_owned));
    assert_eq!(r[1]["default"]["ip"], net["ip"]);
}

#[test]
fn stemcell_api_v1_uses_the_registry_and_cleans_it_up() {
    let s = setup();
    let v1 = s.cpi.with_versions(1, 1);
    let stemcell = s.stemcell();
    let r = s.call_with(
        &v1,
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    let cid = r
        .result
        .as_str()
        .expect("v1 answers the cid alone")
        .to_owned();
    let settings = s
        .registry
        .settings(&cid)
        .expect("settings in the registry")
        .unwrap();
    assert_eq!(settings["agent_id"], "agent-1");
    let pointer = s.env.agent_settings(&cid).unwrap();
    assert!(pointer["registry"]["endpoint"]
        .as_str()
        .unwrap()
        .contains(&s.registry.endpoint().host));
    assert!(
        pointer.get("agent_id").is_none(),
        "user data only points at the registry"
    );

    // A disk attached with v1 lands in the registry settings.
    let disk = s.disk(&cid);
    let r = s.call_with(&v1, "attach_disk", json!([cid, disk]));
    assert!(r.error.is_none() && r.result.is_null(), "{r:?}");
    let settings = s.registry.settings(&cid).unwrap().unwrap();
    assert!(settings["disks"]["persistent"][&disk]["iscsi_settings"]["target"].is_string());
    let r = s.call_with(&v1, "detach_disk", json!([cid, disk]));
    assert!(r.error.is_none(), "{r:?}");
    assert!(
        s.registry.settings(&cid).unwrap().unwrap()["disks"]["persistent"]
            .get(&disk)
            .is_none()
    );

    assert!(s.call_with(&v1, "delete_vm", json!([cid])).error.is_none());
    assert!(
        s.registry.settings(&cid).is_none(),
        "registry record removed"
    );
    // Gone from the cloud and the registry: still success.
    assert!(s.call_with(&v1, "delete_vm", json!([cid])).error.is_none());
}

#[test]
fn has_reboot_metadata_and_delete() {
    let s = setup();
    let cid = s.vm();
    s.ok("reboot_vm", json!([cid]));
    assert_eq!(
        s.env
            .fake
            .with_state(|st| st.guests.values().next().unwrap().reboots),
        1
    );
    s.ok("set_vm_metadata", json!([cid, {"director": "d", "deployment": "dep", "name": "web/0", "index": 0, "compiling": true}]));
    let m = s.env.vm_metadata(&cid);
    assert_eq!(m.get("deployment").map(String::as_str), Some("dep"));
    assert_eq!(m.get("name").map(String::as_str), Some("web/0"));
    assert_eq!(m.get("index").map(String::as_str), Some("0"));
    // Any metadata, even only a name, never a crash.
    s.ok("set_vm_metadata", json!([cid, {"name": "x"}]));
    s.ok("set_vm_metadata", json!([cid, {}]));
    s.ok("delete_vm", json!([cid]));
    assert!(!s.env.vm_exists(&cid));
    assert_eq!(s.ok("has_vm", json!([cid])), json!(false));
    s.ok("delete_vm", json!([cid]));
}

#[test]
fn missing_vms_answer_vm_not_found_or_false() {
    let s = setup();
    let missing = s.env.unknown_cid("vm");
    assert_eq!(s.ok("has_vm", json!([missing])), json!(false));
    assert_eq!(s.ok("has_vm", json!(["not-a-number"])), json!(false));
    s.ok("delete_vm", json!([missing]));
    for (method, args) in [
        ("reboot_vm", json!([missing])),
        ("set_vm_metadata", json!([missing, {"a": "b"}])),
        ("get_disks", json!([missing])),
    ] {
        let e = s.err(method, args);
        assert_eq!(e.kind, "Bosh::Clouds::VMNotFound", "{method}: {e:?}");
    }
}

#[test]
fn bad_cloud_properties_name_the_key_and_leave_nothing() {
    let s = setup();
    let stemcell = s.stemcell();
    let (props, key) = s.env.bad_vm_cloud_properties();
    let e = s.err(
        "create_vm",
        json!(["a", stemcell, props, {"default": s.env.dynamic_network()}, [], {}]),
    );
    assert!(e.message.contains(key), "{e:?}");
    let mut no_prefix = s.env.vm_cloud_properties();
    no_prefix.as_object_mut().unwrap().remove("hostname_prefix");
    let e = s.err(
        "create_vm",
        json!(["a", stemcell, no_prefix, {"default": s.env.dynamic_network()}, [], {}]),
    );
    assert_eq!(e.kind, "Bosh::Clouds::CpiError");
    assert!(e.message.contains("hostname_prefix"), "{e:?}");
    let bad_vlan = json!({"type": "dynamic", "cloud_properties": {"vlan_ids": [5555]}});
    let e = s.err("create_vm", s.create_vm_args(&stemcell, bad_vlan));
    assert!(
        e.message.contains("vlan_ids") && e.message.contains("5555"),
        "{e:?}"
    );
    assert_eq!(s.guests(), 0);
}

#[test]
fn calculate_vm_cloud_properties_maps_resources() {
    let s = setup();
    let p: Value = s.ok(
        "calculate_vm_cloud_properties",
        json!([{"cpu": 2, "ram": 4096, "ephemeral_disk_size": 30720}]),
    );
    assert_eq!(
        p,
        json!({"cpu": 2, "memory": 4096, "ephemeral_disk_size": 30})
    );
}

#[test]
fn create_vm_honours_every_placement_property() {
    let s = setup();
    let stemcell = s.stemcell();
    let props = json!({
        "hostname_prefix": "web", "domain": "corp.test", "datacenter": "dal10", "flavor_key_name": "B1_2X8X25",
        "hourly_billing_flag": false, "local_disk_flag": false, "dedicated_account_host_only_flag": true,
        "max_network_speed": 100, "ssh_key": 11, "ssh_keys": [12],
        "ephemeral_disk_size": 100, "tags": ["team:blue", "env:ci"]
    });
    let private_only = json!({"type": "dynamic", "cloud_properties": {"vlan_ids": ["1003"]}});
    let r = s.ok(
        "create_vm",
        json!(["agent-9", stemcell, props, {"default": private_only}, [], {}]),
    );
    let cid = r[0].as_str().unwrap();
    let g = s
        .env
        .fake
        .with_state(|st| st.guests.values().next().cloned().unwrap());
    assert_eq!(g.id.to_string(), cid);
    assert!(
        g.hostname.starts_with("web-") && g.domain == "corp.test",
        "{} {}",
        g.hostname,
        g.domain
    );
    assert_eq!(
        (
            g.datacenter.as_str(),
            g.flavor.as_deref(),
            g.cpus,
            g.memory_mb
        ),
        ("dal10", Some("B1_2X8X25"), 2, 8192)
    );
    assert_eq!(
        (g.hourly, g.local_disk, g.dedicated, g.dedicated_host_id),
        (false, false, true, None)
    );
    assert_eq!((g.max_speed, g.ephemeral_gb), (100, 100));
    assert_eq!(g.ssh_key_ids, vec![11, 12]);
    assert_eq!(
        (g.private_vlan, g.public_vlan, g.private_only),
        (1003, None, true)
    );
    assert_eq!(g.tags, vec!["team:blue", "env:ci"]);
    assert!(g.backend_ip.starts_with("10.180.20."), "{}", g.backend_ip);
    // A VLAN from another datacenter is refused before anything is ordered.
    let wrong_dc = json!({"type": "dynamic", "cloud_properties": {"vlan_ids": [1001]}});
    let e = s.err(
        "create_vm",
        json!(["agent-9", stemcell, props, {"default": wrong_dc}, [], {}]),
    );
    assert!(
        e.message.contains("VLAN 1001") && e.message.contains("dal10"),
        "{e:?}"
    );
    assert_eq!(s.guests(), 1);
    // A dedicated host by id; with the account-only flag too it is refused
    // by name (the Go CPI silently dropped the id).
    let mut on_host = props.clone();
    on_host["dedicated_account_host_only_flag"] = json!(false);
    on_host["dedicated_host_id"] = json!(4242);
    let r = s.ok(
        "create_vm",
        json!(["agent-10", stemcell, on_host, {"default": private_only}, [], {}]),
    );
    let id: u64 = r[0].as_str().unwrap().parse().unwrap();
    let g = s.env.fake.with_state(|st| st.guests[&id].clone());
    assert_eq!((g.dedicated, g.dedicated_host_id), (false, Some(4242)));
    on_host["dedicated_account_host_only_flag"] = json!(true);
    let e = s.err(
        "create_vm",
        json!(["agent-11", stemcell, on_host, {"default": private_only}, [], {}]),
    );
    assert!(e.message.contains("dedicated_host_id"), "{e:?}");
    assert_eq!(s.guests(), 2, "nothing ordered");
}
