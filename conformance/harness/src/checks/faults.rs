//! Faults the cloud acts out: a failure part-way through create_vm,
//! transient and persistent errors, a dropped connection, latency. A fault
//! the environment cannot inject makes its check skipped, never passed.

use super::stemcells::diff;
use super::{describe, ensure, fail, skip, Ctx, NamedCheck, Outcome, VM_CREATION_FAILED};
use crate::environment::Fault;
use serde_json::json;
use std::time::Duration;

pub const CHECKS: &[NamedCheck] = &[
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
    let args = ctx.create_vm_args(&agent, &stemcell, props, nets, &[]);
    let reply = ctx.reply(&cpi, "create_vm", args);
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
        "the failed create_vm left {} behind",
        diff(&before, &after)
    );
    Ok(())
}

/// A VM to ask about: `has_vm` is a call every cloud answers from its API,
/// and one the resurrector acts on, so it must never say false for a VM that
/// exists just because the cloud is having trouble.
fn vm_to_ask_about(ctx: &mut Ctx) -> Result<String, super::Stop> {
    let stemcell = ctx.stemcell()?;
    ctx.create_vm(&stemcell)
}

/// `has_vm` of an existing VM under `fault` still answers true.
fn survives(ctx: &mut Ctx, fault: Fault, what: &str) -> Outcome {
    let vm = vm_to_ask_about(ctx)?;
    inject(ctx, fault)?;
    let cpi = ctx.cpi.clone();
    let reply = ctx.reply(&cpi, "has_vm", vec![json!(vm)]);
    ctx.env.clear_faults();
    let reply = reply?;
    match reply.error {
        Some(e) => fail!("has_vm {what}: {}", describe(&e)),
        None => ensure!(
            reply.result == json!(true),
            "has_vm of an existing VM {what} answered {}",
            reply.result
        ),
    }
    Ok(())
}

fn transient_error_retried(ctx: &mut Ctx) -> Outcome {
    survives(
        ctx,
        Fault::Transient { times: 2 },
        "after two transient errors",
    )
}

/// Every cloud request fails: `has_vm` must end with an error within the
/// CPI's own bound (the runner kills it past the harness's), never `false`.
fn persistent_error_bounded(ctx: &mut Ctx) -> Outcome {
    let vm = vm_to_ask_about(ctx)?;
    inject(ctx, Fault::Persistent)?;
    let cpi = ctx.cpi.clone();
    let reply = ctx.reply(&cpi, "has_vm", vec![json!(vm)]);
    ctx.env.clear_faults();
    let reply = reply?;
    match reply.error {
        None => fail!(
            "has_vm answered {} while every cloud request failed (false would make the resurrector recreate a live VM)",
            reply.result
        ),
        Some(e) => ensure!(!e.message.trim().is_empty(), "a persistent cloud error gave an empty message"),
    }
    Ok(())
}

fn dropped_connection_survived(ctx: &mut Ctx) -> Outcome {
    survives(ctx, Fault::DropConnection, "after a dropped connection")
}

fn latency_survived(ctx: &mut Ctx) -> Outcome {
    survives(
        ctx,
        Fault::Latency(Duration::from_millis(300)),
        "with 300 ms added latency",
    )
}
