//! Protocol, bad input: malformed or empty requests, unknown methods, wrong
//! arguments, a config that is missing or unreadable. Each gets a JSON error
//! of the type the director expects, naming the problem, exit 0.

use super::shape;
use crate::checks::{describe, ensure, fail, Ctx, Outcome, Stop, CPI_ERROR, NOT_IMPLEMENTED};
use crate::cpi::{Cpi, Reply};
use serde_json::{json, Value};

/// An error of type `kind` whose message mentions one of `words`.
pub(super) fn expect_error(reply: Reply, what: &str, kind: &str, words: &[&str]) -> Outcome {
    let Some(e) = reply.error else {
        fail!("{what}: expected {kind}, got result {}", reply.result);
    };
    ensure!(
        e.kind == kind,
        "{what}: expected {kind}, got {}",
        describe(&e)
    );
    let msg = e.message.to_lowercase();
    ensure!(
        words.iter().any(|w| msg.contains(&w.to_lowercase())),
        "{what}: the message does not name the problem (expected one of {words:?}): {}",
        e.message
    );
    Ok(())
}

pub(super) fn malformed_json(ctx: &mut Ctx) -> Outcome {
    let reply = ctx
        .cpi
        .call_raw("malformed", br#"{"method": "has_vm", "arguments": ["#)?;
    expect_error(
        reply,
        "malformed JSON",
        CPI_ERROR,
        &["json", "parse", "malformed"],
    )
}

pub(super) fn empty_stdin(ctx: &mut Ctx) -> Outcome {
    let reply = ctx.cpi.call_raw("empty", b"")?;
    expect_error(
        reply,
        "empty stdin",
        CPI_ERROR,
        &["empty", "stdin", "no request", "eof"],
    )
}

/// bosh-cpi-go answers an unknown method with NotImplemented, and the
/// director falls back on that type; so does our runner.
pub(super) fn unknown_method(ctx: &mut Ctx) -> Outcome {
    let reply = ctx.cpi.call("conformance_no_such_method", vec![])?;
    expect_error(
        reply,
        "unknown method",
        NOT_IMPLEMENTED,
        &["conformance_no_such_method"],
    )
}

pub(super) fn wrong_argument_count(ctx: &mut Ctx) -> Outcome {
    let reply = ctx.cpi.call("has_vm", vec![])?;
    expect_error(
        reply,
        "has_vm with no arguments",
        CPI_ERROR,
        &["argument", "vm_cid"],
    )?;
    let reply = ctx
        .cpi
        .call("attach_disk", vec![json!(ctx.env.unknown_cid("vm"))])?;
    expect_error(
        reply,
        "attach_disk with one argument",
        CPI_ERROR,
        &["argument", "disk_cid"],
    )
}

pub(super) fn wrong_argument_type(ctx: &mut Ctx) -> Outcome {
    let reply = ctx.cpi.call(
        "create_disk",
        vec![json!("ten gigabytes"), json!({}), Value::Null],
    )?;
    expect_error(
        reply,
        "create_disk with a string size",
        CPI_ERROR,
        &["size", "argument 1", "integer"],
    )?;
    let reply = ctx.cpi.call("has_vm", vec![json!({"not": "a cid"})])?;
    expect_error(
        reply,
        "has_vm with an object cid",
        CPI_ERROR,
        &["vm_cid", "argument 1", "string"],
    )
}

/// Newer callers may send arguments this CPI does not know, at the end.
pub(super) fn extra_trailing_arguments(ctx: &mut Ctx) -> Outcome {
    let reply = ctx.cpi.call(
        "has_vm",
        vec![
            json!(ctx.env.unknown_cid("vm")),
            json!({"from": "a newer director"}),
        ],
    )?;
    shape(reply, "has_vm with a trailing extra argument", |r| {
        *r == json!(false)
    })
}

/// The CPI's argument list with its config file replaced by `path`.
fn with_config(cpi: &Cpi, path: &str) -> Result<Cpi, Stop> {
    let mut args = cpi.command().args.clone();
    let slot = args.iter_mut().find_map(|a| {
        let (prefix, value) = match a.split_once('=') {
            Some((p, v)) if p.starts_with('-') => (format!("{p}="), v.to_owned()),
            _ => (String::new(), a.clone()),
        };
        std::path::Path::new(&value)
            .is_file()
            .then_some((a, prefix))
    });
    let Some((arg, prefix)) = slot else {
        crate::checks::skip!(
            "no config file among the CPI's arguments {:?}",
            cpi.command().args
        );
    };
    *arg = format!("{prefix}{path}");
    Ok(cpi.with_args(args))
}

pub(super) fn missing_config(ctx: &mut Ctx) -> Outcome {
    let missing = format!("/nonexistent/conformance-{}/cpi.json", ctx.unique());
    let cpi = with_config(&ctx.cpi, &missing)?;
    let reply = cpi.call("has_vm", vec![json!(ctx.env.unknown_cid("vm"))])?;
    expect_error(
        reply,
        "a missing config file",
        CPI_ERROR,
        &["config", &missing],
    )
}

pub(super) fn unreadable_config(ctx: &mut Ctx) -> Outcome {
    let dir = tempfile::tempdir().map_err(|e| Stop::Fail(e.to_string()))?;
    // A directory where the file should be: unreadable even for root.
    let as_dir = dir.path().join("cpi.json");
    std::fs::create_dir(&as_dir).map_err(|e| Stop::Fail(e.to_string()))?;
    let cpi = with_config(&ctx.cpi, &as_dir.to_string_lossy())?;
    let reply = cpi.call("has_vm", vec![json!(ctx.env.unknown_cid("vm"))])?;
    expect_error(
        reply,
        "a config path that is a directory",
        CPI_ERROR,
        &["config", "directory"],
    )?;
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{ this is: not json").map_err(|e| Stop::Fail(e.to_string()))?;
    let cpi = with_config(&ctx.cpi, &garbage.to_string_lossy())?;
    let reply = cpi.call("has_vm", vec![json!(ctx.env.unknown_cid("vm"))])?;
    expect_error(
        reply,
        "a config file that is not JSON",
        CPI_ERROR,
        &["config", "json"],
    )
}
