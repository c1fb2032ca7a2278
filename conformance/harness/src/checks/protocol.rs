//! Protocol: `info`, result shapes per API version, bad input of every kind,
//! unsupported methods, and the response schema the director validates.

mod input;

use super::{describe, ensure, fail, Ctx, NamedCheck, Outcome, CPI_ERROR, NOT_IMPLEMENTED};
use crate::cpi::{Cpi, Reply};
use crate::environment::Fault;
use input::*;
use serde_json::{json, Value};
use std::time::Duration;

pub const CHECKS: &[NamedCheck] = &[
    ("info_without_cloud", info_without_cloud),
    ("result_shapes_v1", result_shapes_v1),
    ("result_shapes_v2", result_shapes_v2),
    ("malformed_json", malformed_json),
    ("empty_stdin", empty_stdin),
    ("unknown_method", unknown_method),
    ("wrong_argument_count", wrong_argument_count),
    ("wrong_argument_type", wrong_argument_type),
    ("extra_trailing_arguments", extra_trailing_arguments),
    ("missing_config", missing_config),
    ("unreadable_config", unreadable_config),
    ("optional_methods", optional_methods),
    ("response_schema", response_schema),
];

/// How long `info` may take: a process start and a config parse.
const INFO_BOUND: Duration = Duration::from_secs(1);

/// `info` answers its fields quickly while every cloud request would fail
/// (or, where the fake cannot fail, would be slow).
fn info_without_cloud(ctx: &mut Ctx) -> Outcome {
    let cut_off =
        ctx.env.inject(Fault::Persistent) || ctx.env.inject(Fault::Latency(Duration::from_secs(3)));
    let reply = ctx.cpi.call("info", vec![]);
    ctx.env.clear_faults();
    let reply = reply?;
    if let Some(e) = &reply.error {
        fail!(
            "info failed{}: {}",
            if cut_off {
                " with the cloud unreachable (does it touch the cloud?)"
            } else {
                ""
            },
            describe(e)
        );
    }
    let r = &reply.result;
    ensure!(
        r["api_version"].as_u64().is_some_and(|v| v >= 1),
        "info.api_version is not a positive integer: {r}"
    );
    let formats = r["stemcell_formats"].as_array();
    ensure!(
        formats.is_some_and(
            |f| !f.is_empty() && f.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty()))
        ),
        "info.stemcell_formats is not a non-empty list of names: {r}"
    );
    ensure!(
        reply.elapsed <= INFO_BOUND,
        "info took {} ms (bound {} ms){}",
        reply.elapsed.as_millis(),
        INFO_BOUND.as_millis(),
        if cut_off {
            " with the cloud unreachable: it waits on the cloud"
        } else {
            ""
        }
    );
    Ok(())
}

fn result_shapes_v1(ctx: &mut Ctx) -> Outcome {
    let cpi = ctx.cpi.with_versions(1, 1);
    result_shapes(ctx, &cpi)
}

fn result_shapes_v2(ctx: &mut Ctx) -> Outcome {
    if ctx.info.api_version < 2 {
        super::skip!("info reports API v{}", ctx.info.api_version);
    }
    let cpi = ctx.cpi.with_versions(2, 2);
    result_shapes(ctx, &cpi)
}

/// Every lifecycle method's result has the shape of the version asked for.
fn result_shapes(ctx: &mut Ctx, cpi: &Cpi) -> Outcome {
    let v = cpi.api_version;
    let stemcell = ctx.stemcell()?;
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let (vm, answered) = ctx.create_vm_with(cpi, &agent, &stemcell, &nets, &[])?;
    if v >= 2 {
        let got: Vec<&String> = answered
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let sent: Vec<&String> = nets
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        ensure!(
            got == sent,
            "create_vm v2: the networks answered ({answered}) do not name the networks sent"
        );
        for (name, net) in nets.as_object().into_iter().flatten() {
            if let Some(ip) = net.get("ip") {
                ensure!(
                    answered[name]["ip"] == *ip,
                    "create_vm v2: networks.{name}.ip is {} (asked {ip})",
                    answered[name]["ip"]
                );
            }
        }
    }
    shape(ctx.reply(cpi, "has_vm", vec![json!(vm)])?, "has_vm", |r| {
        *r == json!(true)
    })?;
    metadata_shape(
        ctx.reply(
            cpi,
            "set_vm_metadata",
            vec![json!(vm), json!({"director": "conformance"})],
        )?,
        "set_vm_metadata",
    )?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    let hint = ctx.attach(cpi, &vm, &disk)?;
    if v >= 2 {
        ensure!(
            !super::settings::is_empty_hint(&hint),
            "attach_disk v2: the disk hint is empty: {hint}"
        );
    } else {
        ensure!(hint.is_null(), "attach_disk v1: expected null, got {hint}");
    }
    shape(
        ctx.reply(cpi, "get_disks", vec![json!(vm)])?,
        "get_disks",
        |r| {
            r.as_array()
                .is_some_and(|a| a.iter().all(Value::is_string) && a.contains(&json!(disk)))
        },
    )?;
    shape(
        ctx.reply(cpi, "has_disk", vec![json!(disk)])?,
        "has_disk",
        |r| *r == json!(true),
    )?;
    metadata_shape(
        ctx.reply(
            cpi,
            "set_disk_metadata",
            vec![json!(disk), json!({"director": "conformance"})],
        )?,
        "set_disk_metadata",
    )?;
    shape(
        ctx.reply(cpi, "detach_disk", vec![json!(vm), json!(disk)])?,
        "detach_disk",
        Value::is_null,
    )?;
    ctx.delete_disk(&disk)?;
    shape(
        ctx.reply(cpi, "delete_vm", vec![json!(vm)])?,
        "delete_vm",
        Value::is_null,
    )?;
    ctx.forget_vm(&vm);
    shape(
        ctx.reply(cpi, "delete_stemcell", vec![json!(stemcell)])?,
        "delete_stemcell",
        Value::is_null,
    )?;
    Ok(())
}

/// The director rescues NotImplemented from the metadata calls: no shape to check then.
fn metadata_shape(reply: Reply, method: &str) -> Outcome {
    match &reply.error {
        Some(e) if e.kind == NOT_IMPLEMENTED => Ok(()),
        _ => shape(reply, method, Value::is_null),
    }
}

fn shape(reply: Reply, method: &str, ok: impl Fn(&Value) -> bool) -> Outcome {
    if let Some(e) = reply.error {
        fail!("{method}: {}", describe(&e));
    }
    ensure!(
        ok(&reply.result),
        "{method}: unexpected result {}",
        reply.result
    );
    Ok(())
}

/// Methods a cloud may not have answer NotImplemented (or NotSupported),
/// never a crash or a CpiError; `ping` answers "pong".
fn optional_methods(ctx: &mut Ctx) -> Outcome {
    let calls: [(&str, Vec<Value>, &[&str]); 2] = [
        (
            "calculate_vm_cloud_properties",
            vec![json!({"cpu": 1, "ram": 512, "ephemeral_disk_size": 1024})],
            &[],
        ),
        (
            "delete_network",
            vec![json!(ctx.env.unknown_cid("network"))],
            &["Bosh::Clouds::NetworkNotFound"],
        ),
    ];
    for (method, args, also) in calls {
        let reply = ctx.cpi.call(method, args)?;
        if let Some(e) = reply.error {
            ensure!(
                e.kind == NOT_IMPLEMENTED
                    || e.kind == "Bosh::Clouds::NotSupported"
                    || also.contains(&e.kind.as_str()),
                "{method}: an unsupported method must answer NotImplemented, got {}",
                describe(&e)
            );
        } else if method == "calculate_vm_cloud_properties" {
            ensure!(
                reply.result.is_object(),
                "{method}: expected cloud properties, got {}",
                reply.result
            );
        }
    }
    let reply = ctx.cpi.call("ping", vec![])?;
    shape(reply, "ping", |r| *r == json!("pong"))
}

/// Every answer is one JSON document of the director's schema (the runner
/// refuses anything else), on a success, a `false` and an error alike; an
/// error's message says something.
fn response_schema(ctx: &mut Ctx) -> Outcome {
    shape(ctx.cpi.call("info", vec![])?, "info", Value::is_object)?;
    shape(
        ctx.cpi
            .call("has_vm", vec![json!(ctx.env.unknown_cid("vm"))])?,
        "has_vm of an unknown cid",
        |r| *r == json!(false),
    )?;
    let reply = ctx.cpi.call("delete_disk", vec![json!({"bad": "cid"})])?;
    expect_error(
        reply,
        "delete_disk with an object cid",
        CPI_ERROR,
        &["disk_cid", "argument"],
    )
}
