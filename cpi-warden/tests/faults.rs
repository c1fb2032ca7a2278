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

#[test]
fn throttling_is_waited_out_past_the_attempt_budget() {
    // Ten 503s in a row: more than the client's six attempts for failures
    // that may be real, well inside its 30 s deadline. Found by
    // `conformance load --chaos throttle`, where six unlucky draws in a row
    // failed a create_vm.
    let w = World::new();
    assert!(w.env.inject(Fault::Transient { times: 10 }));
    assert_eq!(w.ok("has_vm", vec![json!("some-vm")]), json!(false));
    w.env.clear_faults();
}

// ---- Issue 17's three patterns, each fault acted out by the fake after it
// acted (the answer lost or cut), through the real binary. ----

use fake_garden::{FaultAction, FaultRule};

fn vm_of(r: &harness::cpi::Reply) -> String {
    assert!(r.error.is_none(), "{:?}", r.error);
    r.result[0].as_str().unwrap().to_owned()
}

/// A create retried blindly: the container's create, the port forward and
/// the agent's start each lose their answer once; the retries find what
/// the first attempt made instead of making it again.
#[test]
fn lost_answers_of_creates_are_not_repeated() {
    let w = World::new();
    let stemcell = w.stemcell();
    let f = w.env.fake();
    f.add_fault(FaultRule::new(&["create"], FaultAction::LoseAnswer).times(1));
    f.add_fault(FaultRule::new(&["net_in"], FaultAction::LoseAnswer).times(1));
    f.add_fault(
        FaultRule::new(&["run"], FaultAction::LoseAnswer)
            .body_contains("runsvdir")
            .times(1),
    );
    let r = w
        .cpi
        .call(
            "create_vm",
            vec![
                json!("agent-f"),
                json!(stemcell),
                json!({"ports": [8080]}),
                json!({"default": w.env.manual_network(1)}),
                json!([]),
                json!({}),
            ],
        )
        .unwrap();
    let vm = vm_of(&r);
    assert_eq!(f.calls().get("create"), Some(&2), "the create was retried");
    assert_eq!(w.env.inventory().vms, vec![vm.clone()], "one container");
    let c = f.container(&vm).unwrap();
    assert_eq!(c.mapped_ports, vec![(8080, 8080)], "one port mapping");
    assert_eq!(c.agent_starts, 1, "one agent: {:?}", c.commands);
    w.ok("delete_vm", vec![json!(vm)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

/// A clean-up depending on a look-up: create_vm fails after the container
/// exists, and the clean-up's destroy fails twice; it destroys by handle
/// with its own retries (no look-up first) and leaves nothing.
#[test]
fn the_clean_up_of_a_failed_create_needs_no_look_up() {
    let w = World::new();
    let stemcell = w.stemcell();
    let f = w.env.fake();
    f.add_fault(
        FaultRule::new(
            &["stream_in"],
            FaultAction::Error {
                status: 500,
                kind: "InjectedError".into(),
            },
        )
        .times(1),
    );
    f.add_fault(FaultRule::new(&["destroy"], FaultAction::Status(503)).times(2));
    f.add_fault(FaultRule::new(
        &["list", "info", "bulk_info"],
        FaultAction::Status(500),
    ));
    let r = create(&w, &stemcell, 1);
    let e = r.error.expect("create_vm fails");
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed", "{}", e.message);
    assert_eq!(f.calls().get("destroy"), Some(&3));
    assert!(!f.calls().contains_key("list") && !f.calls().contains_key("info"));
    w.env.clear_faults();
    let inv = w.env.inventory();
    assert!(inv.vms.is_empty(), "containers left: {:?}", inv.vms);
    assert!(inv.other.is_empty(), "left behind: {:?}", inv.other);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}

/// "Already done" taken for a failure: a destroy whose answer was lost is
/// retried and finds the container gone: delete_vm succeeds. An attach
/// whose settings write lost its answer, and a detach whose settings read
/// was cut mid-body, both finish.
#[test]
fn already_done_is_success() {
    let w = World::new();
    let stemcell = w.stemcell();
    let f = w.env.fake();
    let vm = vm_of(&create(&w, &stemcell, 1));
    let disk = w.ok("create_disk", vec![json!(16), json!({}), json!(vm)]);
    f.add_fault(FaultRule::new(&["stream_in"], FaultAction::LoseAnswer).times(1));
    let hint = w.ok("attach_disk", vec![json!(vm), disk.clone()]);
    let settings = w.env.agent_settings(&vm).unwrap();
    assert_eq!(
        settings["disks"]["persistent"][disk.as_str().unwrap()],
        hint
    );
    assert_eq!(
        w.env.disk_attached_to(disk.as_str().unwrap()),
        Some(vm.clone())
    );
    f.add_fault(FaultRule::new(&["stream_out"], FaultAction::CutMidBody).times(1));
    w.ok("detach_disk", vec![json!(vm), disk.clone()]);
    assert_eq!(w.env.disk_attached_to(disk.as_str().unwrap()), None);
    let settings = w.env.agent_settings(&vm).unwrap();
    assert!(settings["disks"]["persistent"]
        .get(disk.as_str().unwrap())
        .is_none());
    f.add_fault(FaultRule::new(&["destroy"], FaultAction::LoseAnswer).times(1));
    w.ok("delete_vm", vec![json!(vm)]);
    assert_eq!(f.calls().get("destroy"), Some(&2));
    w.ok("delete_disk", vec![disk]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}
