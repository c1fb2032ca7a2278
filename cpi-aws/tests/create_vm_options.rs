//! create_vm's cloud_properties and networks as the cloud records them, and
//! its cleanup when a step after RunInstances fails.

mod common;

use harness::{Environment, Fault};
use serde_json::{json, Value};

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

#[test]
fn metadata_options_and_source_dest_check_reach_the_instance_with_placement_and_tenancy_set() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let ec2 = f.env.inspector().client().clone();
    // (moto's CreatePlacementGroup fails; its RunInstances keeps the name.)
    let mut props = f.env.vm_cloud_properties();
    props["placement_group"] = json!("bosh-cluster");
    props["tenancy"] = json!("dedicated");
    props["metadata_options"] =
        json!({"http_tokens": "required", "http_put_response_hop_limit": 3});
    props["source_dest_check"] = json!(false);
    let r = f.ok(
        "create_vm",
        vec![
            json!("agent-opts"),
            json!(stemcell),
            props,
            json!({"default": f.env.manual_network(7)}),
            json!([]),
            json!({}),
        ],
    );
    let vm = r[0].as_str().unwrap().to_owned();
    let (i, eni) = f.env.inspector().block_on(async {
        let out = ec2
            .describe_instances()
            .instance_ids(&vm)
            .send()
            .await
            .unwrap();
        let i = out.reservations()[0].instances()[0].clone();
        let eni_id = i.network_interfaces()[0]
            .network_interface_id()
            .unwrap()
            .to_owned();
        let eni = ec2
            .describe_network_interfaces()
            .network_interface_ids(eni_id)
            .send()
            .await
            .unwrap();
        (i, eni.network_interfaces()[0].clone())
    });
    // moto keeps neither the placement group nor the tenancy of a
    // RunInstances (it answers "" and "default"): they are sent, and the
    // call succeeds with them, but only these two can be read back.
    let md = i.metadata_options().unwrap();
    assert_eq!(md.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(md.http_put_response_hop_limit(), Some(3));
    assert_eq!(eni.source_dest_check(), Some(false));
    f.ok("delete_vm", vec![json!(vm)]);
}

#[test]
fn an_advertised_route_into_a_missing_table_is_refused_by_name_before_anything_is_made() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    for (key, value) in [(
        "advertised_routes",
        json!([{"table_id": "rtb-1", "destination": "0.0.0.0/0"}]),
    )] {
        let mut props = f.env.vm_cloud_properties();
        props[key] = value.clone();
        let e = f.err(
            "create_vm",
            vec![
                json!("agent-x"),
                json!(stemcell),
                props,
                json!({"default": f.env.manual_network(8)}),
                json!([]),
                json!({}),
            ],
            "Bosh::Clouds::CpiError",
        );
        assert!(
            e.message.contains(&format!("cloud_properties.{key}")),
            "{key}: {}",
            e.message
        );
    }
    // Their "off" values are accepted (and empty load balancer lists).
    let mut props = f.env.vm_cloud_properties();
    props["elbs"] = json!([]);
    props["lb_target_groups"] = json!(null);
    props["spot_ondemand_fallback"] = json!(false);
    props["spot_bid_price"] = json!(null);
    props["raw_instance_storage"] = json!(false);
    let r = f.ok(
        "create_vm",
        vec![
            json!("agent-y"),
            json!(stemcell),
            props,
            json!({"default": f.env.manual_network(8)}),
            json!([]),
            json!({}),
        ],
    );
    f.ok("delete_vm", vec![r[0].clone()]);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn advertised_routes_point_at_the_vm_and_a_missing_table_is_named() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    let ec2 = f.env.inspector().client().clone();
    let vpc = f.env.seed().vpc.clone();
    let table = f.env.inspector().block_on(async {
        let t = ec2.create_route_table().vpc_id(&vpc).send().await.unwrap();
        t.route_table()
            .unwrap()
            .route_table_id()
            .unwrap()
            .to_owned()
    });
    let route_target = |dest: &str| {
        f.env.inspector().block_on(async {
            let out = ec2
                .describe_route_tables()
                .route_table_ids(&table)
                .send()
                .await
                .unwrap();
            out.route_tables()[0]
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some(dest))
                .and_then(|r| r.instance_id().map(str::to_owned))
        })
    };
    let create = |n: u8, routes: Value| {
        let mut props = f.env.vm_cloud_properties();
        props["advertised_routes"] = routes;
        f.call(
            "create_vm",
            vec![
                json!("agent-nat"),
                json!(stemcell),
                props,
                json!({"default": f.env.manual_network(n)}),
                json!([]),
                json!({}),
            ],
        )
    };
    let routes = json!([{"table_id": table, "destination": "10.9.0.0/16"}]);
    let a = create(1, routes.clone()).result[0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(route_target("10.9.0.0/16").as_deref(), Some(a.as_str()));
    // A second VM advertising the same destination takes the route over.
    let b = create(2, routes).result[0].as_str().unwrap().to_owned();
    assert_eq!(route_target("10.9.0.0/16").as_deref(), Some(b.as_str()));

    let before_bad = f.env.inventory();
    let r = create(
        3,
        json!([{"table_id": "rtb-0123456789abcdef0", "destination": "10.8.0.0/16"}]),
    );
    let e = r.error.expect("a missing route table fails create_vm");
    assert!(
        e.message.contains("advertised_routes") && e.message.contains("rtb-0123456789abcdef0"),
        "{}",
        e.message
    );
    common::assert_nothing_left(&before_bad, &f.env.inventory());
    f.ok("delete_vm", vec![json!(a)]);
    f.ok("delete_vm", vec![json!(b)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}
