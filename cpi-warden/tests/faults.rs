//! Garden failing under the CPI: a failure once the container exists
//! leaves nothing behind; transient errors and dropped connections are
//! retried; a persistent error ends within the CPI's own bound.

mod common;

use common::World;
use harness::{Environment, Fault};
use serde_json::json;
use std::time::Duration;

fn create(w: &World, stemcell: &str, n: u8) -> harness::cpi::Reply {
    w.cpi
        .call(
            "create_vm",
            vec![
                json!("agent-f"),
                json!(stemcell),
                json!({}),
                json!({"default": w.env.manual_network(n)}),
                json!([]),
                json!({}),
            ],
        )
        .expect("a well-formed answer")
}

#[test]
fn create_vm_failing_after_the_container_exists_leaves_nothing() {
    let w = World::new();
    let stemcell = w.stemcell();
    assert!(w.env.inject(Fault::CreateVmAfterVmExists));
    let r = create(&w, &stemcell, 1);
    let e = r.error.expect("create_vm must fail");
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed", "{}", e.message);
    assert!(e.ok_to_retry);
    assert!(
        w.env.fake().calls().contains_key("create"),
        "the container was never created: the fault did not act"
    );
    let inv = w.env.inventory();
    assert!(inv.vms.is_empty(), "containers left: {:?}", inv.vms);
    assert!(inv.other.is_empty(), "left behind: {:?}", inv.other);
    // The director retries: now it works.
    let r = create(&w, &stemcell, 1);
    assert!(r.error.is_none(), "{:?}", r.error);
    w.ok("delete_vm", vec![r.result[0].clone()]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn transient_errors_and_dropped_connections_are_retried() {
    let w = World::new();
    let stemcell = w.stemcell();
    assert!(w.env.inject(Fault::Transient { times: 2 }));
    let r = create(&w, &stemcell, 2);
    assert!(
        r.error.is_none(),
        "a transient error was not retried: {:?}",
        r.error
    );
    let vm = r.result[0].as_str().unwrap().to_owned();
    assert!(w.env.inject(Fault::DropConnection));
    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(true));
    assert!(w.env.inject(Fault::Latency(Duration::from_millis(100))));
    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(true));
    w.env.clear_faults();
    w.ok("delete_vm", vec![json!(vm)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

#[test]
fn a_persistent_error_ends_with_a_clear_error() {
    let w = World::new();
    assert!(w.env.inject(Fault::Persistent));
    let (kind, msg) = w.err("has_vm", vec![json!("some-vm")]);
    assert_eq!(kind, "Bosh::Clouds::CloudError");
    assert!(msg.contains("HTTP 500") && msg.contains("gave up"), "{msg}");
    w.env.clear_faults();
    assert_eq!(w.ok("has_vm", vec![json!("some-vm")]), json!(false));
}
