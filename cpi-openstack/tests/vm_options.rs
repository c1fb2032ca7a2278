//! create_vm and VM method options: boot from volume, several NICs and a
//! dynamic network, human-readable names, reboot falling back to hard.

mod common;
use common::*;
use fake_openstack::{FaultAction, FaultRule};
use serde_json::json;

#[test]
fn boot_from_volume_sends_a_block_device_mapping() {
    let w = world_with(|p| p["openstack"]["default_volume_type"] = json!("fast"));
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(&stemcell, json!({"instance_type": "m1.small", "boot_from_volume": true, "root_disk": {"size": 30}}),
            json!({"default": World::manual("10.0.0.40")}))
        .unwrap();
    let bdm = &w.fake.server(&vm).unwrap()["fake:block_device_mapping_v2"][0];
    assert_eq!(bdm["source_type"], "image");
    assert_eq!(bdm["destination_type"], "volume");
    assert_eq!(bdm["uuid"], fake_openstack::LIGHT_IMAGE_ID);
    assert_eq!(bdm["volume_size"], 30);
    assert_eq!(bdm["volume_type"], "fast");
    assert_eq!(bdm["delete_on_termination"], true);
}

#[test]
fn several_nics_and_a_dynamic_network() {
    let w = world();
    let stemcell = w.light_stemcell();
    let networks = json!({
        "a": World::manual("10.0.0.41"),
        "b": World::manual("10.0.0.42"),
        "c": {"type": "dynamic", "cloud_properties": {"net_id": fake_openstack::NET_ID}},
    });
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.medium", "security_groups": ["bosh"]}),
            networks,
        )
        .unwrap();
    let server = w.fake.server(&vm).unwrap();
    let nets = server["fake:networks"].as_array().unwrap();
    assert_eq!(nets.len(), 3, "{nets:?}");
    assert_eq!(nets.iter().filter(|n| n["port"].is_string()).count(), 2);
    assert_eq!(server["security_groups"], json!([{"name": "bosh"}]));
    let mut ips: Vec<String> = w
        .fake
        .ports()
        .iter()
        .filter(|p| p["device_id"] == vm.as_str())
        .map(|p| p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned())
        .collect();
    ips.sort();
    assert_eq!(ips.len(), 3);
    assert!(ips.contains(&"10.0.0.41".to_owned()) && ips.contains(&"10.0.0.42".to_owned()));
    let settings: serde_json::Value =
        serde_json::from_str(&w.fake.user_data(&vm).unwrap()).unwrap();
    assert!(
        settings["disks"]
            .get("ephemeral")
            .is_none_or(|e| e.is_null()),
        "m1.medium has no ephemeral disk"
    );
    w.ok("delete_vm", vec![json!(vm)]);
    assert!(w.fake.ports().is_empty(), "{:?}", w.fake.ports());
}

#[test]
fn human_readable_names_rename_the_server_and_keep_the_registry_key() {
    let w = world_with(|p| p["openstack"]["human_readable_vm_names"] = json!(true));
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.43")}),
        )
        .unwrap();
    let key = w.fake.server(&vm).unwrap()["name"].clone();
    w.ok(
        "set_vm_metadata",
        vec![json!(vm), json!({"job": "web", "index": "3"})],
    );
    let server = w.fake.server(&vm).unwrap();
    assert_eq!(server["name"], "web/3");
    assert_eq!(server["metadata"]["registry_key"], key);
}

#[test]
fn a_refused_soft_reboot_falls_back_to_hard() {
    let w = world();
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.44")}),
        )
        .unwrap();
    w.fake.inject(FaultRule::new(
        Some("POST"),
        "/action",
        FaultAction::Status {
            code: 409,
            retry_after: None,
        },
    ));
    w.ok("reboot_vm", vec![json!(vm)]);
    assert_eq!(
        w.count_calls(&format!("POST /compute/v2.1/servers/{vm}/action")),
        2
    );
    assert_eq!(w.fake.server(&vm).unwrap()["status"], "ACTIVE");
    let e = w.err(
        "reboot_vm",
        vec![json!("00000000-0000-0000-0000-000000000000")],
    );
    assert_eq!(e.kind, "Bosh::Clouds::VMNotFound");
}

#[test]
fn a_missing_image_fails_without_making_anything() {
    let w = world();
    let e = w
        .create_vm(
            "no-such-image",
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.45")}),
        )
        .unwrap_err();
    assert!(e.message.contains("no-such-image"), "{}", e.message);
    assert!(w.fake.servers().is_empty() && w.fake.ports().is_empty());
}

#[test]
fn calculate_vm_cloud_properties_picks_the_smallest_fitting_flavor() {
    let w = world();
    let props = w.ok(
        "calculate_vm_cloud_properties",
        vec![json!({"cpu": 1, "ram": 1024, "ephemeral_disk_size": 4096})],
    );
    assert_eq!(props, json!({"instance_type": "m1.small"}));
    let props = w.ok(
        "calculate_vm_cloud_properties",
        vec![json!({"cpu": 2, "ram": 3000, "ephemeral_disk_size": 20480})],
    );
    assert_eq!(
        props,
        json!({"instance_type": "m1.medium", "root_disk": {"size": 23}})
    );
    let e = w.err(
        "calculate_vm_cloud_properties",
        vec![json!({"cpu": 64, "ram": 1024, "ephemeral_disk_size": 1024})],
    );
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
}

#[test]
fn go_job_invocation_form_works() {
    let w = world();
    let args = w.cpi.command().args.clone();
    let cpi = w.cpi.with_args(vec![
        format!("-configFile={}", args[0]),
        format!("-caCert={}", args[1]),
    ]);
    let reply = cpi
        .call(
            "has_vm",
            vec![json!("00000000-0000-0000-0000-000000000000")],
        )
        .unwrap();
    assert_eq!((reply.result, reply.error), (json!(false), None));
}
