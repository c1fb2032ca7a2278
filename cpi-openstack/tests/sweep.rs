//! The fault sweep: a director-shaped lifecycle (create_vm with a manual
//! network, create_disk, attach_disk, snapshot_disk, delete_snapshot,
//! detach_disk, delete_vm, delete_disk) through the real binary, once per
//! request it makes, with that one request failed (500 before the cloud
//! acts), its answer lost after the cloud acted (a 500 in its place, or the
//! connection closed), or its body cut mid-way. The director's own retries
//! are played (create_vm on VMCreationFailed with ok_to_retry, any other call
//! once more, DiskNotAttached on a detach retry as done). Each sweep proves:
//! every failed call answers a Bosh::Clouds kind, the lifecycle finishes,
//! and the cloud holds nothing afterwards: no server, volume, snapshot or
//! port, no floating IP bound, and never a second server.

mod common;
use common::*;
use fake_openstack::{FaultAction, FaultRule};
use serde_json::{json, Value};

const KINDS: &[&str] = &[
    "Bosh::Clouds::CpiError",
    "Bosh::Clouds::CloudError",
    "Bosh::Clouds::VMCreationFailed",
    "Bosh::Clouds::VMNotFound",
    "Bosh::Clouds::DiskNotFound",
    "Bosh::Clouds::DiskNotAttached",
    "Bosh::Clouds::NotSupported",
];

/// Calls `method` as the director does: one retry after an error.
fn director(w: &World, method: &str, args: Vec<Value>, tries: usize) -> Result<Value, String> {
    let mut last = String::new();
    for attempt in 1..=tries {
        let reply = w
            .cpi
            .call(method, args.clone())
            .map_err(|e| format!("{method}: no valid answer: {e}"))?;
        match reply.error {
            None => return Ok(reply.result),
            Some(e) => {
                if !KINDS.contains(&e.kind.as_str()) {
                    return Err(format!("{method}: unknown kind {}: {}", e.kind, e.message));
                }
                if method == "detach_disk"
                    && attempt > 1
                    && e.kind == "Bosh::Clouds::DiskNotAttached"
                {
                    return Ok(Value::Null); // the first try's lost answer did it
                }
                if method == "create_vm" && e.kind != "Bosh::Clouds::VMCreationFailed" {
                    return Err(format!("create_vm: {}: {}", e.kind, e.message));
                }
                last = format!("{method}: {}: {}", e.kind, e.message);
            }
        }
    }
    Err(last)
}

fn lifecycle(w: &World, stemcell: &str) -> Result<(), String> {
    let created = director(
        w,
        "create_vm",
        vec![
            json!("agent-sweep"),
            json!(stemcell),
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.40")}),
            json!([]),
            json!({}),
        ],
        5,
    )?;
    let vm = created[0].clone();
    let disk = director(
        w,
        "create_disk",
        vec![json!(1024), json!({}), vm.clone()],
        2,
    )?;
    director(w, "attach_disk", vec![vm.clone(), disk.clone()], 2)?;
    let snap = director(w, "snapshot_disk", vec![disk.clone(), json!({})], 2)?;
    director(w, "delete_snapshot", vec![snap], 2)?;
    director(w, "detach_disk", vec![vm.clone(), disk.clone()], 2)?;
    director(w, "delete_vm", vec![vm], 2)?;
    director(w, "delete_disk", vec![disk], 2)?;
    Ok(())
}

fn leftovers(w: &World) -> Vec<String> {
    let mut left = Vec::new();
    for (kind, items) in [
        ("server", w.fake.servers()),
        ("volume", w.fake.volumes()),
        ("snapshot", w.fake.snapshots()),
        ("port", w.fake.ports()),
    ] {
        left.extend(items.iter().map(|i| format!("{kind} {}", i["id"])));
    }
    left.extend(
        w.fake
            .floating_ips()
            .iter()
            .filter(|f| !f["port_id"].is_null())
            .map(|f| format!("floating ip {}", f["floating_ip_address"])),
    );
    left
}

/// Requests one clean lifecycle makes after the stemcell exists.
fn clean_run_requests() -> usize {
    let w = world();
    let stemcell = w.light_stemcell();
    let before = w.fake.calls().len();
    lifecycle(&w, &stemcell).expect("the clean lifecycle passes");
    assert!(leftovers(&w).is_empty(), "{:?}", leftovers(&w));
    w.fake.calls().len() - before
}

/// Runs the lifecycle once per request index with `action` on that request;
/// answers the failures (empty when every run passed).
fn sweep(action: impl Fn(usize) -> FaultAction) -> (usize, Vec<String>) {
    let n = clean_run_requests();
    assert!(n > 20, "the lifecycle makes {n} requests");
    let mut failures = Vec::new();
    for i in 1..=n {
        let w = world();
        let stemcell = w.light_stemcell();
        let before = w.fake.calls().len();
        w.fake
            .inject(FaultRule::new(None, "", action(i)).nth(i as u32).times(1));
        let result = lifecycle(&w, &stemcell);
        let left = leftovers(&w);
        let nth_call = w.fake.calls().get(before + i - 1).cloned();
        if let Err(e) = result {
            failures.push(format!("request {i} ({nth_call:?}): {e}"));
        } else if !left.is_empty() {
            failures.push(format!("request {i}: left {left:?}"));
        }
    }
    (n, failures)
}

fn check(name: &str, (n, failures): (usize, Vec<String>)) {
    eprintln!("{name}: {} of {n} runs pass", n - failures.len());
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

#[test]
fn sweep_one_request_failed_at_a_time() {
    check(
        "failed",
        sweep(|_| FaultAction::Status {
            code: 500,
            retry_after: None,
        }),
    );
}

#[test]
fn sweep_one_answer_lost_at_a_time_as_a_500() {
    check(
        "lost (500)",
        sweep(|_| FaultAction::StatusAfter { code: 500 }),
    );
}

#[test]
fn sweep_one_answer_lost_at_a_time_as_a_closed_connection() {
    check("lost (closed)", sweep(|_| FaultAction::DropAfter));
}

#[test]
fn sweep_one_answer_cut_mid_body_at_a_time() {
    check("cut mid-body", sweep(|_| FaultAction::CutBody));
}
