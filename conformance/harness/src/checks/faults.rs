//! Faults the cloud acts out: a failure part-way through create_vm,
//! transient and persistent errors, a dropped connection, latency. A fault
//! the environment cannot inject makes its check skipped, never passed.

use super::stemcells::diff;
use super::{describe, ensure, fail, skip, Ctx, Outcome, VM_CREATION_FAILED};
use crate::environment::Fault;
use serde_json::json;
use std::time::Duration;

pub const CHECKS: &[(&str, fn(&mut Ctx) -> Outcome)] = &[
    ("create_vm_failure_cleans_up", create_vm_failure_cleans_up),
    ("transient_error_retried", transient_error_retried),
    ("persistent_error_bounded", persistent_error_bounded),
    ("dropped_connection_survived", dropped_connection_survived),
    ("latency_survived", latency_survived),
];

fn inject(ctx: &Ctx, fault: Fault) -> Outcome {
    if !ctx.env.inject(fault.clone()) {
        skip!("{} cannot inject {fault:?}", ctx.env.name());
    }
    Ok(())
}

fn create_vm_failure_cleans_up(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let before = ctx.env.inventory();
    inject(ctx, Fault::CreateVmAfterVmExists)?;
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let cpi = ctx.cpi.clone();
    let props = ctx.env.vm_cloud_properties();
    let reply = ctx.reply(
        &cpi,
        "create_vm",
        vec![
            json!(agent),
            json!(stemcell),
            props,
            nets,
            json!([]),
            ctx.vm_env(),
        ],
    );
    ctx.env.clear_faults();
    let reply = reply?;
    let after = ctx.env.inventory();
    match reply.error {
        None => {
            let cid = reply
                .result
                .get(0)
                .or(Some(&reply.result))
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let _ = cpi.call("delete_vm", vec![json!(cid)]);
            fail!(
                "create_vm succeeded although the cloud failed part-way: {}",
                reply.result
            )
        }
        Some(e) => ensure!(
            e.kind == VM_CREATION_FAILED,
            "a failure part-way through create_vm must answer VMCreationFailed, got {}",
            describe(&e)
        ),
    }
    ensure!(
        after == before,
        "the failed create_vm left {:?} behind",
        diff(&before, &after)
    );
    Ok(())
}

/// The call the faults are aimed at: a disk, made and removed.
fn disk_round_trip(ctx: &mut Ctx, what: &str) -> Outcome {
    let disk = ctx.create_disk(1024, None).map_err(|e| match e {
        super::Stop::Fail(m) => super::Stop::Fail(format!("{what}: {m}")),
        other => other,
    });
    ctx.env.clear_faults();
    let disk = disk?;
    ensure!(
        ctx.env.disk_exists(&disk),
        "{what}: create_disk answered {disk} but the cloud has no such disk"
    );
    ctx.delete_disk(&disk)
}

fn transient_error_retried(ctx: &mut Ctx) -> Outcome {
    inject(ctx, Fault::Transient { times: 2 })?;
    disk_round_trip(ctx, "after two transient errors")
}

fn persistent_error_bounded(ctx: &mut Ctx) -> Outcome {
    let before = ctx.env.inventory();
    inject(ctx, Fault::Persistent)?;
    let cpi = ctx.cpi.clone();
    let reply = ctx.reply(
        &cpi,
        "create_disk",
        vec![json!(1024), ctx.env.disk_cloud_properties(), json!(null)],
    );
    ctx.env.clear_faults();
    // A hung CPI has already failed here: the runner's bound killed it.
    let reply = reply?;
    match reply.error {
        None => {
            let _ = cpi.call("delete_disk", vec![reply.result.clone()]);
            fail!(
                "create_disk succeeded while every cloud request failed: {}",
                reply.result
            )
        }
        Some(e) => ensure!(
            !e.message.trim().is_empty(),
            "a persistent cloud error gave an empty message"
        ),
    }
    let after = ctx.env.inventory();
    ensure!(
        after == before,
        "the failed create_disk left {:?} behind",
        diff(&before, &after)
    );
    Ok(())
}

fn dropped_connection_survived(ctx: &mut Ctx) -> Outcome {
    inject(ctx, Fault::DropConnection)?;
    disk_round_trip(ctx, "after a dropped connection")
}

fn latency_survived(ctx: &mut Ctx) -> Outcome {
    inject(ctx, Fault::Latency(Duration::from_millis(300)))?;
    disk_round_trip(ctx, "with 300 ms added latency")
}
