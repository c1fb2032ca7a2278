//! The incumbent's cloud_properties and job properties beyond the basic
//! lifecycle, each read back from the fake: Octavia pool members, allowed
//! address pairs (VRRP), auto anti-affinity server groups, availability
//! zones, flavor-less sizing, security groups on ports; and the refusals
//! (Nova networking, Keystone v2) naming their key.

mod common;
use common::*;
use fake_openstack::{FaultAction, FaultRule};
use serde_json::{json, Value};

fn nothing_left(w: &World) {
    assert!(w.fake.servers().is_empty(), "{:?}", w.fake.servers());
    assert!(w.fake.ports().is_empty(), "{:?}", w.fake.ports());
    assert!(
        w.fake.pool_members().is_empty(),
        "{:?}",
        w.fake.pool_members()
    );
}

fn vm(w: &World, props: Value, ip: &str) -> Result<String, harness::cpi::WireError> {
    let stemcell = w.light_stemcell();
    w.create_vm(&stemcell, props, json!({"default": World::manual(ip)}))
}

#[test]
fn loadbalancer_pools_get_the_vm_as_a_member_until_it_is_deleted() {
    let w = world();
    let id = vm(
        &w,
        json!({"instance_type": "m1.small", "loadbalancer_pools": [{"name": "web", "port": 80}, {"name": "ssh", "port": 22}]}),
        "10.0.0.60",
    )
    .unwrap();
    let mut members: Vec<(String, String, u64, String)> = w
        .fake
        .pool_members()
        .iter()
        .map(|m| {
            (
                m["pool_id"].as_str().unwrap().to_owned(),
                m["address"].as_str().unwrap().to_owned(),
                m["protocol_port"].as_u64().unwrap(),
                m["subnet_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            ("pool-ssh".into(), "10.0.0.60".into(), 22, "subnet-1".into()),
            ("pool-web".into(), "10.0.0.60".into(), 80, "subnet-1".into())
        ]
    );
    let meta = &w.fake.server(&id).unwrap()["metadata"];
    assert!(
        meta["lbaas_pool_0"]
            .as_str()
            .unwrap()
            .starts_with("pool-web/"),
        "{meta}"
    );
    w.ok("delete_vm", vec![json!(id)]);
    nothing_left(&w);
}

#[test]
fn a_create_failing_after_adding_a_member_removes_it() {
    let w = world();
    // The second pool does not exist: the first membership is undone.
    let e = vm(
        &w,
        json!({"instance_type": "m1.small", "loadbalancer_pools": [{"name": "web", "port": 80}, {"name": "nosuch", "port": 22}]}),
        "10.0.0.61",
    )
    .unwrap_err();
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed");
    assert!(
        e.message.contains("loadbalancer_pools") && e.message.contains("'nosuch'"),
        "{}",
        e.message
    );
    nothing_left(&w);

    // Recording the memberships fails (a 400 is not retried): undone too.
    w.fake.inject(FaultRule::new(
        Some("POST"),
        "/metadata",
        FaultAction::Status {
            code: 400,
            retry_after: None,
        },
    ));
    let e = vm(
        &w,
        json!({"instance_type": "m1.small", "loadbalancer_pools": [{"name": "web", "port": 80}]}),
        "10.0.0.62",
    )
    .unwrap_err();
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed");
    nothing_left(&w);

    // The member POST's answer lost: found again, not added twice.
    w.fake.inject(FaultRule::new(
        Some("POST"),
        "/members",
        FaultAction::StatusAfter { code: 500 },
    ));
    let id = vm(
        &w,
        json!({"instance_type": "m1.small", "loadbalancer_pools": [{"name": "web", "port": 80}]}),
        "10.0.0.63",
    )
    .unwrap();
    assert_eq!(w.fake.pool_members().len(), 1);
    w.ok("delete_vm", vec![json!(id)]);
    nothing_left(&w);
}

#[test]
fn a_pool_of_the_wrong_shape_is_named() {
    let w = world();
    let e = vm(
        &w,
        json!({"instance_type": "m1.small", "loadbalancer_pools": [{"name": "web", "port": "eighty"}]}),
        "10.0.0.64",
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("cloud_properties.loadbalancer_pools[0].port"),
        "{}",
        e.message
    );
    nothing_left(&w);
}

#[test]
fn allowed_address_pairs_go_on_the_default_port_after_the_vrrp_check() {
    let w = world();
    let e = vm(
        &w,
        json!({"instance_type": "m1.small", "allowed_address_pairs": "10.0.0.99"}),
        "10.0.0.65",
    )
    .unwrap_err();
    assert!(
        e.message.contains("allowed_address_pairs") && e.message.contains("10.0.0.99"),
        "{}",
        e.message
    );
    nothing_left(&w);

    let vrrp = w.fake.add_port("10.0.0.99");
    let id = vm(
        &w,
        json!({"instance_type": "m1.small", "allowed_address_pairs": "10.0.0.99"}),
        "10.0.0.66",
    )
    .unwrap();
    let port = w
        .fake
        .ports()
        .into_iter()
        .find(|p| p["device_id"] == id.as_str())
        .unwrap();
    assert_eq!(
        port["allowed_address_pairs"],
        json!([{"ip_address": "10.0.0.99"}])
    );
    w.ok("delete_vm", vec![json!(id)]);
    assert_eq!(
        w.fake.ports().len(),
        1,
        "only the operator's VRRP port is left"
    );
    assert_eq!(w.fake.ports()[0]["id"], vrrp.as_str());

    // A dynamic default network cannot carry it.
    let stemcell = w.light_stemcell();
    let e = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small", "allowed_address_pairs": "10.0.0.99"}),
            json!({"default": {"type": "dynamic", "cloud_properties": {"net_id": fake_openstack::NET_ID}}}),
        )
        .unwrap_err();
    assert!(e.message.contains("dynamic"), "{}", e.message);
}

#[test]
fn auto_anti_affinity_puts_an_instance_group_in_one_server_group_made_on_demand() {
    let w = world_with(|p| p["openstack"]["enable_auto_anti_affinity"] = json!(true));
    let stemcell = w.light_stemcell();
    let create = |ip: &str| {
        let reply = w
            .cpi
            .call(
                "create_vm",
                vec![
                    json!("agent-g"),
                    json!(stemcell),
                    json!({"instance_type": "m1.small"}),
                    json!({"default": World::manual(ip)}),
                    json!([]),
                    json!({"bosh": {"group": "dep-web"}}),
                ],
            )
            .unwrap();
        assert!(reply.error.is_none(), "{:?}", reply.error);
        reply.result[0].as_str().unwrap().to_owned()
    };
    let a = create("10.0.0.67");
    let b = create("10.0.0.68");
    let groups: Vec<Value> = w
        .fake
        .server_groups()
        .into_iter()
        .filter(|g| g["id"] != "g-1")
        .collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let g = &groups[0];
    assert!(g["name"].as_str().unwrap().ends_with("-dep-web"), "{g}");
    assert_eq!(g["policies"], json!(["soft-anti-affinity"]));
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        w.fake.server(&a).unwrap()["fake:scheduler_hints"]["group"],
        g["id"]
    );
    w.ok("delete_vm", vec![json!(a)]);
    assert_eq!(w.fake.server_groups().len(), 2, "still in use by {b}");
    w.ok("delete_vm", vec![json!(b)]);
    assert_eq!(
        w.fake.server_groups().len(),
        1,
        "the made group is gone, the seeded one stays"
    );
}

#[test]
fn availability_zones_need_ignore_server_availability_zone() {
    let w = world();
    let e = vm(
        &w,
        json!({"instance_type": "m1.small", "availability_zones": ["z1", "z2"]}),
        "10.0.0.69",
    )
    .unwrap_err();
    assert!(
        e.message.contains("availability_zones")
            && e.message.contains("ignore_server_availability_zone"),
        "{}",
        e.message
    );
    let e = vm(
        &w,
        json!({"instance_type": "m1.small", "availability_zone": "z1", "availability_zones": ["z1"]}),
        "10.0.0.69",
    )
    .unwrap_err();
    assert!(e.message.contains("only one of"), "{}", e.message);
    nothing_left(&w);

    let w = world_with(|p| p["openstack"]["ignore_server_availability_zone"] = json!(true));
    let id = vm(
        &w,
        json!({"instance_type": "m1.small", "availability_zones": ["z1", "z2"]}),
        "10.0.0.70",
    )
    .unwrap();
    let az = w.fake.server(&id).unwrap()["OS-EXT-AZ:availability_zone"].clone();
    assert!(az == "z1" || az == "z2", "{az}");
}

#[test]
fn cpu_and_ram_pick_a_flavor_without_instance_type() {
    let w = world();
    let id = vm(&w, json!({"cpu": 2, "ram": 4096}), "10.0.0.71").unwrap();
    assert_eq!(w.fake.server(&id).unwrap()["flavor"]["id"], "2");
    // More ephemeral disk than m1.small has: the root disk holds it.
    let id = vm(
        &w,
        json!({"cpu": 1, "ram": 1024, "ephemeral_disk_size": 20480}),
        "10.0.0.72",
    )
    .unwrap();
    let s = w.fake.server(&id).unwrap();
    assert_eq!(s["flavor"]["id"], "1");
    assert_eq!(s["fake:block_device_mapping_v2"][0]["volume_size"], 23);
    let e = vm(&w, json!({"cpu": 64, "ram": 1 << 20}), "10.0.0.73").unwrap_err();
    assert!(e.message.contains("64 CPUs"), "{}", e.message);
    let e = vm(&w, json!({"ram": 1024}), "10.0.0.73").unwrap_err();
    assert!(e.message.contains("instance_type"), "{}", e.message);
}

#[test]
fn network_security_groups_go_on_the_port() {
    let w = world();
    let stemcell = w.light_stemcell();
    let mut net = World::manual("10.0.0.74");
    net["cloud_properties"]["security_groups"] = json!(["bosh"]);
    let id = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": net}),
        )
        .unwrap();
    let port = w
        .fake
        .ports()
        .into_iter()
        .find(|p| p["device_id"] == id.as_str())
        .unwrap();
    assert_eq!(port["security_groups"], json!(["sg-bosh"]));
}

#[test]
fn nova_networking_and_keystone_v2_are_refused_by_name() {
    let w = world_with(|p| p["openstack"]["use_nova_networking"] = json!(true));
    let e = w.err("has_vm", vec![json!("x")]);
    assert_eq!(e.kind, "Bosh::Clouds::CpiError");
    assert!(
        e.message.contains("openstack.use_nova_networking"),
        "{}",
        e.message
    );

    let w = world_with(|p| p["openstack"]["auth_url"] = json!("http://127.0.0.1:1/identity/v2.0"));
    let e = w.err("has_vm", vec![json!("x")]);
    assert_eq!(e.kind, "Bosh::Clouds::CpiError");
    assert!(
        e.message.contains("openstack.auth_url") && e.message.contains("v2"),
        "{}",
        e.message
    );
    assert!(w.fake.calls().is_empty(), "nothing was sent");
}

#[test]
fn tenant_scopes_the_token_when_project_is_absent() {
    let w = world_with(|p| {
        let o = p["openstack"].as_object_mut().unwrap();
        o.remove("project");
        o.insert("tenant".into(), json!(fake_openstack::PROJECT));
    });
    assert_eq!(w.ok("has_vm", vec![json!("x")]), json!(false));
}

#[test]
fn stemcell_visibility_properties_and_disk_type_reach_the_cloud() {
    let w = world_with(|p| p["openstack"]["stemcell_public_visibility"] = json!(true));
    let image = w.image_file(1 << 16);
    let id = w.ok(
        "create_stemcell",
        vec![
            json!(image),
            json!({"name": "s", "version": "1", "os_distro": "ubuntu", "hw_vif_model": "virtio", "hypervisor": "kvm"}),
        ],
    );
    let img = w.fake.images().into_iter().find(|i| i["id"] == id).unwrap();
    assert_eq!(img["visibility"], "public");
    assert_eq!(img["os_distro"], "ubuntu");
    assert_eq!(img["hw_vif_model"], "virtio");
    assert_eq!(img["hypervisor_type"], "kvm");

    let disk = w.ok(
        "create_disk",
        vec![json!(1024), json!({"type": "ssd"}), json!(null)],
    );
    assert_eq!(
        w.fake.volume(disk.as_str().unwrap()).unwrap()["volume_type"],
        "ssd"
    );
}

#[test]
fn default_security_groups_apply_without_others() {
    let w = world_with(|p| p["openstack"]["default_security_groups"] = json!(["bosh"]));
    let id = vm(&w, json!({"instance_type": "m1.small"}), "10.0.0.75").unwrap();
    assert_eq!(
        w.fake.server(&id).unwrap()["security_groups"],
        json!([{"name": "bosh"}])
    );
}
