//! How many Garden requests each call makes, counted by the fake: the calls
//! make only the requests their answer needs (issue 18). Counts, not
//! times: they do not depend on the machine's load.

mod common;

use common::World;
use harness::Environment;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Runs a call and answers the Garden requests it made, by route.
fn counted(w: &World, method: &str, args: Vec<Value>) -> (Value, BTreeMap<String, u64>) {
    let before = w.env.fake().calls();
    let r = w.ok(method, args);
    let after = w.env.fake().calls();
    let diff = after
        .into_iter()
        .filter_map(|(k, n)| {
            let d = n - before.get(&k).copied().unwrap_or(0);
            (d > 0).then_some((k, d))
        })
        .collect();
    (r, diff)
}

fn total(c: &BTreeMap<String, u64>) -> u64 {
    c.values().sum()
}

#[test]
fn each_call_makes_only_the_requests_it_needs() {
    let w = World::new();
    let stemcell = w.stemcell();
    let (vm, c) = counted(
        &w,
        "create_vm",
        vec![
            json!("agent-1"),
            json!(stemcell),
            json!({}),
            json!({"default": w.env.manual_network(1)}),
            json!([]),
            json!({}),
        ],
    );
    let vm = vm[0].as_str().unwrap().to_owned();
    eprintln!("create_vm: {c:?}");
    // create, one stream-in of the settings and metadata, one check, the agent.
    assert_eq!(total(&c), 4, "create_vm: {c:?}");

    let (_, c) = counted(&w, "has_vm", vec![json!(vm)]);
    eprintln!("has_vm: {c:?}");
    assert_eq!(total(&c), 1, "has_vm: {c:?}");

    let md = json!({"director": "d", "deployment": "dep", "name": "web/0", "job": "web",
                    "index": "0", "id": "x", "created_at": "2026-01-01T00:00:00Z"});
    let (_, c) = counted(&w, "set_vm_metadata", vec![json!(vm), md]);
    eprintln!("set_vm_metadata: {c:?}");
    assert_eq!(c.get("property_set"), Some(&1), "set_vm_metadata: {c:?}");
    assert_eq!(total(&c), 1, "set_vm_metadata: {c:?}");

    let (disk, c) = counted(&w, "create_disk", vec![json!(16), json!({}), json!(vm)]);
    assert_eq!(total(&c), 0, "create_disk: {c:?}");
    let (_, c) = counted(&w, "attach_disk", vec![json!(vm), disk.clone()]);
    eprintln!("attach_disk: {c:?}");
    // Read the settings, write them, check them.
    assert_eq!(total(&c), 3, "attach_disk: {c:?}");
    let (_, c) = counted(&w, "get_disks", vec![json!(vm)]);
    assert_eq!(total(&c), 0, "get_disks: {c:?}");
    let (_, c) = counted(&w, "detach_disk", vec![json!(vm), disk.clone()]);
    eprintln!("detach_disk: {c:?}");
    assert_eq!(total(&c), 3, "detach_disk: {c:?}");
    let (_, c) = counted(&w, "delete_disk", vec![disk]);
    assert_eq!(total(&c), 0, "delete_disk: {c:?}");
    let (_, c) = counted(&w, "delete_vm", vec![json!(vm)]);
    eprintln!("delete_vm: {c:?}");
    assert_eq!(total(&c), 1, "delete_vm: {c:?}");
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}
