//! The requests a call makes, read back from the fake's request log: none
//! that the answer does not need (the Go CPI's counts as the bar).

mod common;
use common::*;
use serde_json::json;

fn during(w: &World, f: impl FnOnce()) -> Vec<String> {
    let before = w.fake.calls().len();
    f();
    w.fake.calls()[before..]
        .iter()
        .filter(|c| !c.starts_with("POST /identity/"))
        .cloned()
        .collect()
}

#[test]
fn snapshot_metadata_travels_with_the_create() {
    let w = world();
    let disk = w.ok("create_disk", vec![json!(1024), json!({}), json!(null)]);
    let calls = during(&w, || {
        w.ok(
            "snapshot_disk",
            vec![
                disk.clone(),
                json!({"deployment": "d", "job": "j", "index": "0"}),
            ],
        );
    });
    assert!(!calls.iter().any(|c| c.ends_with("/metadata")), "{calls:?}");
    assert_eq!(w.fake.snapshots()[0]["metadata"]["job"], "j");
}

#[test]
fn delete_vm_of_a_live_server_asks_for_its_ports_once() {
    let w = world();
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.50")}),
        )
        .unwrap();
    let calls = during(&w, || {
        w.ok("delete_vm", vec![json!(vm)]);
    });
    let port_lookups = calls
        .iter()
        .filter(|c| c.starts_with("GET /network/v2.0/ports"))
        .count();
    assert_eq!(port_lookups, 1, "{calls:?}");
    assert!(w.fake.ports().is_empty() && w.fake.servers().is_empty());
}

#[test]
fn a_dynamic_network_needs_no_security_group_lookup() {
    let w = world();
    let stemcell = w.light_stemcell();
    let net = json!({"type": "dynamic", "dns": [], "default": ["dns", "gateway"], "cloud_properties": {"net_id": fake_openstack::NET_ID}});
    let calls = during(&w, || {
        w.create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": net}),
        )
        .unwrap();
    });
    assert!(
        !calls.iter().any(|c| c.contains("security-groups")),
        "{calls:?}"
    );
}

#[test]
fn delete_snapshot_sends_the_delete_first() {
    let w = world();
    let disk = w.ok("create_disk", vec![json!(1024), json!({}), json!(null)]);
    let snap = w.ok("snapshot_disk", vec![disk, json!({})]);
    let calls = during(&w, || {
        w.ok("delete_snapshot", vec![snap.clone()]);
    });
    assert!(calls[0].starts_with("DELETE /volume/v3/"), "{calls:?}");
    assert!(w.fake.snapshots().is_empty());
    let calls = during(&w, || {
        w.ok("delete_snapshot", vec![snap.clone()]);
    });
    assert_eq!(calls.len(), 1, "gone: one DELETE answered 404, {calls:?}");
}
