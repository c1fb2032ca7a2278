//! Many director-shaped lifecycles at once, each its own CPI processes,
//! against one fake Garden with random faults on (issue 17): every call
//! answers (a result or a Bosh::Clouds error), and after the director's
//! clean-up the host holds no container, disk, mount, loop device or
//! bind-mount directory. The load mode (`conformance load`) measures the
//! same at scale; this keeps it from regressing in `cargo test`.

mod common;

use common::World;
use harness::cpi::Cpi;
use harness::{Chaos, Environment};
use serde_json::{json, Value};
use std::time::Duration;

const KINDS: &[&str] = &[
    "Bosh::Clouds::CloudError",
    "Bosh::Clouds::VMCreationFailed",
    "Bosh::Clouds::VMNotFound",
    "Bosh::Clouds::DiskNotFound",
    "Bosh::Clouds::DiskNotAttached",
    "Bosh::Clouds::NotSupported",
    "Bosh::Clouds::CPIError",
];

#[derive(Default)]
struct Outcome {
    calls: u32,
    errors: Vec<String>,
    vms: Vec<String>,
    disks: Vec<String>,
}

fn call(cpi: &Cpi, out: &mut Outcome, method: &str, args: Vec<Value>) -> Option<Value> {
    out.calls += 1;
    let r = cpi
        .call(method, args)
        .unwrap_or_else(|e| panic!("{method} did not answer: {e}"));
    match r.error {
        None => Some(r.result),
        Some(e) => {
            assert!(
                KINDS.contains(&e.kind.as_str()),
                "{method} answered an unknown kind {}: {}",
                e.kind,
                e.message
            );
            // The director cleans up what an error names, too.
            for word in e
                .message
                .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            {
                if uuid::Uuid::parse_str(word).is_ok() && word.len() == 36 {
                    match method {
                        "create_vm" => out.vms.push(word.to_owned()),
                        "create_disk" => out.disks.push(word.to_owned()),
                        _ => {}
                    }
                }
            }
            out.errors
                .push(format!("{method}: {} {}", e.kind, e.message));
            None
        }
    }
}

/// create_vm, create_disk, attach, has_vm, set_vm_metadata, detach,
/// delete_vm, delete_disk; stops at the first error, as a director's task
/// fails, leaving the clean-up to the end.
fn lifecycle(w: &World, stemcell: &str, n: u8, out: &mut Outcome) {
    let cpi = Cpi::new(w.env.cpi(), Duration::from_secs(120)).unwrap();
    let Some(vm) = call(
        &cpi,
        out,
        "create_vm",
        vec![
            json!(format!("agent-{n}")),
            json!(stemcell),
            json!({}),
            json!({"default": w.env.manual_network(n)}),
            json!([]),
            json!({}),
        ],
    ) else {
        return;
    };
    let vm = vm[0].as_str().unwrap().to_owned();
    out.vms.push(vm.clone());
    let Some(disk) = call(
        &cpi,
        out,
        "create_disk",
        vec![json!(16), json!({}), json!(vm)],
    ) else {
        return;
    };
    let disk = disk.as_str().unwrap().to_owned();
    out.disks.push(disk.clone());
    let steps: Vec<(&str, Vec<Value>)> = vec![
        ("attach_disk", vec![json!(vm), json!(disk)]),
        ("has_vm", vec![json!(vm)]),
        (
            "set_vm_metadata",
            vec![
                json!(vm),
                json!({"deployment": "chaos", "index": n.to_string()}),
            ],
        ),
        ("detach_disk", vec![json!(vm), json!(disk)]),
        ("delete_vm", vec![json!(vm)]),
        ("delete_disk", vec![json!(disk)]),
    ];
    for (method, args) in steps {
        if call(&cpi, out, method, args).is_none() {
            return;
        }
    }
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn lifecycles_at_once_under_chaos_leave_nothing_behind() {
    let w = World::new();
    let stemcell = w.stemcell();
    assert!(w.env.chaos(Some(Chaos {
        throttle: 0.04,
        server_error: 0.05,
        lost_answer: 0.04,
        drop_mid_body: 0.04,
        rate_limit: None,
        // WARDEN_CHAOS_SEED / _ROUNDS / _K: for soaking by hand.
        seed: env_or("WARDEN_CHAOS_SEED", 20261207),
    })));
    let k_parallel = env_or("WARDEN_CHAOS_K", 6) as u8;
    let rounds = env_or("WARDEN_CHAOS_ROUNDS", 2) as u8;
    let mut outcomes: Vec<Outcome> = Vec::new();
    for round in 0..rounds {
        let batch: Vec<Outcome> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..k_parallel)
                .map(|k| {
                    let (w, stemcell) = (&w, &stemcell);
                    s.spawn(move || {
                        let mut out = Outcome::default();
                        lifecycle(w, stemcell, 1 + round * k_parallel + k, &mut out);
                        out
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        outcomes.extend(batch);
    }
    let counts = w.env.chaos_counts();
    w.env.chaos(None);
    eprintln!("chaos: {counts:?}");
    let calls: u32 = outcomes.iter().map(|o| o.calls).sum();
    let errors: Vec<&String> = outcomes.iter().flat_map(|o| &o.errors).collect();
    eprintln!("{calls} calls, {} errors: {errors:#?}", errors.len());
    assert!(
        counts.server_errors + counts.lost_answers + counts.dropped_mid_body + counts.throttled
            > 10,
        "too few faults drawn to prove anything: {counts:?}"
    );

    // The director's clean-up: delete every VM and disk it was told of.
    for o in &outcomes {
        for vm in &o.vms {
            let r = w.cpi.call("delete_vm", vec![json!(vm)]).unwrap();
            if let Some(e) = r.error {
                assert_eq!(
                    e.kind, "Bosh::Clouds::VMNotFound",
                    "delete_vm {vm}: {}",
                    e.message
                );
            }
        }
    }
    for o in &outcomes {
        for disk in &o.disks {
            w.ok("delete_disk", vec![json!(disk)]);
        }
    }
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
    // With the client's retries, faults at these shares are absorbed: a
    // call fails only when one request draws a fault on every attempt.
    assert!(
        errors.len() <= 1,
        "{} of {calls} calls failed under chaos: {errors:#?}",
        errors.len()
    );
}

/// Two processes attaching one disk to two VMs at once: the disk's lock
/// makes one win and the other answer an error; the disk is mounted once.
/// And a delete racing an attach never removes a disk that ends up mounted.
#[test]
fn one_disk_two_attaches_at_once_mounts_it_once() {
    let w = World::new();
    let stemcell = w.stemcell();
    let a = w.vm(&stemcell, 1);
    let b = w.vm(&stemcell, 2);
    for round in 0..4 {
        let disk = w
            .ok("create_disk", vec![json!(16), json!({}), json!(a)])
            .as_str()
            .unwrap()
            .to_owned();
        let results: Vec<Result<Value, String>> = std::thread::scope(|s| {
            let hs: Vec<_> = [&a, &b]
                .into_iter()
                .map(|vm| {
                    let (w, disk) = (&w, &disk);
                    s.spawn(move || {
                        let cpi = Cpi::new(w.env.cpi(), Duration::from_secs(120)).unwrap();
                        let r = cpi
                            .call("attach_disk", vec![json!(vm), json!(disk)])
                            .unwrap();
                        match r.error {
                            None => Ok(r.result),
                            Some(e) => Err(e.message),
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        let loser = results.iter().find_map(|r| r.clone().err()).unwrap();
        assert!(loser.contains("already attached"), "{loser}");
        let owner = w.env.disk_attached_to(&disk).expect("attached");
        let mounts = w
            .env
            .inventory()
            .other
            .iter()
            .filter(|m| m.starts_with("loop:") && m.ends_with(&disk))
            .count();
        assert_eq!(mounts, 1, "one loop device for the disk");
        // A delete racing the detach: it waits, then either refuses (still
        // attached) or deletes a detached disk; never a mounted one.
        let (detached, deleted) = std::thread::scope(|s| {
            let (w, disk, owner) = (&w, &disk, &owner);
            let d = s.spawn(move || {
                let cpi = Cpi::new(w.env.cpi(), Duration::from_secs(120)).unwrap();
                cpi.call("detach_disk", vec![json!(owner), json!(disk)])
                    .unwrap()
            });
            let x = s.spawn(move || {
                let cpi = Cpi::new(w.env.cpi(), Duration::from_secs(120)).unwrap();
                cpi.call("delete_disk", vec![json!(disk)]).unwrap()
            });
            (d.join().unwrap(), x.join().unwrap())
        });
        assert!(detached.error.is_none(), "{:?}", detached.error);
        assert_eq!(w.env.disk_attached_to(&disk), None);
        if deleted.error.is_some() {
            w.ok("delete_disk", vec![json!(disk)]);
        }
        assert!(!w.env.disk_exists(&disk));
    }
    w.ok("delete_vm", vec![json!(a)]);
    w.ok("delete_vm", vec![json!(b)]);
    w.ok("delete_stemcell", vec![json!(stemcell)]);
    w.assert_empty();
}
