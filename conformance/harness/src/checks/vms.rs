//! VMs: networks, the agent settings by either delivery, has_vm, delete,
//! reboot, metadata, and bad cloud properties.

use super::settings::{compare, Expected};
use super::stemcells::diff;
use super::{
    describe, ensure, fail, skip, Ctx, NamedCheck, Outcome, CLOUD_ERROR, VM_CREATION_FAILED,
};
use serde_json::{json, Value};

pub const CHECKS: &[NamedCheck] = &[
    ("create_manual_network", create_manual_network),
    ("create_dynamic_network", create_dynamic_network),
    ("settings_user_data_v2", settings_user_data_v2),
    ("settings_registry_v1", settings_registry_v1),
    ("has_vm_lifecycle", has_vm_lifecycle),
    ("delete_vm_twice", delete_vm_twice),
    ("reboot_vm", reboot_vm),
    ("set_vm_metadata", set_vm_metadata),
    ("bad_cloud_properties", bad_cloud_properties),
];

fn create_manual_network(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let cpi = ctx.cpi.clone();
    let (vm, _) = ctx.create_vm_with(&cpi, &agent, &stemcell, &nets, &[])?;
    ensure!(
        ctx.env.vm_exists(&vm),
        "VM {vm} does not exist in the cloud"
    );
    let asked = nets["default"]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let got = ctx.env.vm_ip(&vm);
    ensure!(
        got.as_deref() == Some(asked.as_str()),
        "VM {vm} has IP {got:?}, the manual network asked for {asked}"
    );
    Ok(())
}

fn create_dynamic_network(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let agent = ctx.agent_id();
    let nets = ctx.dynamic_networks();
    let cpi = ctx.cpi.clone();
    let (vm, _) = ctx.create_vm_with(&cpi, &agent, &stemcell, &nets, &[])?;
    ensure!(
        ctx.env.vm_exists(&vm),
        "VM {vm} on a dynamic network does not exist in the cloud"
    );
    let has = ctx.ok(&cpi, "has_vm", vec![json!(vm)])?;
    ensure!(
        has == json!(true),
        "has_vm of a VM on a dynamic network answered {has}"
    );
    Ok(())
}

fn expected<'a>(ctx: &Ctx, agent: &'a str, nets: &'a Value, env: &'a Value) -> Expected<'a> {
    Expected {
        agent_id: agent,
        networks: nets,
        env,
        persistent: &[],
        agent: ctx.env.agent_config(),
    }
}

/// Stemcell API v2 with CPI API v2: the settings travel with the VM.
fn settings_user_data_v2(ctx: &mut Ctx) -> Outcome {
    if ctx.info.api_version < 2 {
        skip!(
            "info reports API v{}: no user-data delivery",
            ctx.info.api_version
        );
    }
    let cpi = ctx.cpi.with_versions(2, 2);
    let stemcell = ctx.stemcell()?;
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let (vm, _) = ctx.create_vm_with(&cpi, &agent, &stemcell, &nets, &[])?;
    let Some(settings) = ctx.env.agent_settings(&vm) else {
        fail!("VM {vm} received no agent settings");
    };
    let env = ctx.vm_env();
    compare(&settings, &expected(ctx, &agent, &nets, &env))
        .map_err(|e| prefix(e, "user-data settings"))
}

/// Stemcell API v1: the CPI writes the settings to the registry, keeps them
/// there while the VM lives and removes them with it.
fn settings_registry_v1(ctx: &mut Ctx) -> Outcome {
    let cpi = ctx.cpi.with_versions(ctx.cpi.api_version, 1);
    let stemcell = ctx.stemcell()?;
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let (vm, _) = ctx.create_vm_with(&cpi, &agent, &stemcell, &nets, &[])?;
    let key = ctx.registry_key(&vm);
    let settings = match ctx.registry.settings(&key) {
        None => fail!(
            "the registry holds no settings for VM {vm} (it holds {:?})",
            ctx.registry.instances()
        ),
        Some(Err(e)) => fail!("{e}"),
        Some(Ok(s)) => s,
    };
    let env = ctx.vm_env();
    compare(&settings, &expected(ctx, &agent, &nets, &env))
        .map_err(|e| prefix(e, "registry settings"))?;
    if let Some(endpoint) = ctx.env.agent_settings(&vm).and_then(|ud| {
        ud.pointer("/registry/endpoint")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }) {
        let port = format!(":{}", ctx.registry.endpoint().port);
        ensure!(
            endpoint.contains(&port),
            "the VM's user data points at registry {endpoint}, not the configured one"
        );
    }
    let cpi_v1 = cpi.clone();
    ctx.ok(&cpi_v1, "delete_vm", vec![json!(vm)])?;
    ctx.forget_vm(&vm);
    ensure!(
        ctx.registry.settings(&key).is_none(),
        "delete_vm left VM {vm}'s settings in the registry"
    );
    Ok(())
}

fn prefix(e: super::Stop, what: &str) -> super::Stop {
    match e {
        super::Stop::Fail(m) => super::Stop::Fail(format!("{what}: {m}")),
        other => other,
    }
}

fn has_vm_lifecycle(ctx: &mut Ctx) -> Outcome {
    let cpi = ctx.cpi.clone();
    let unknown = ctx.ok(&cpi, "has_vm", vec![json!(ctx.env.unknown_cid("vm"))])?;
    ensure!(
        unknown == json!(false),
        "has_vm of an unknown cid answered {unknown}"
    );
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let has = ctx.ok(&cpi, "has_vm", vec![json!(vm)])?;
    ensure!(
        has == json!(true),
        "has_vm right after create_vm answered {has}"
    );
    ctx.delete_vm(&vm)?;
    let has = ctx.ok(&cpi, "has_vm", vec![json!(vm)])?;
    ensure!(has == json!(false), "has_vm after delete_vm answered {has}");
    ensure!(
        !ctx.env.vm_exists(&vm),
        "VM {vm} still exists in the cloud after delete_vm"
    );
    Ok(())
}

fn delete_vm_twice(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    ctx.delete_vm(&vm)?;
    let cpi = ctx.cpi.clone();
    let reply = ctx.reply(&cpi, "delete_vm", vec![json!(vm)])?;
    if let Some(e) = reply.error {
        // The director tolerates VMNotFound here; anything else fails it.
        ensure!(
            e.kind == "Bosh::Clouds::VMNotFound",
            "delete_vm of a deleted VM: {}",
            describe(&e)
        );
    }
    let reply = ctx.reply(&cpi, "delete_vm", vec![json!(ctx.env.unknown_cid("vm"))])?;
    if let Some(e) = reply.error {
        ensure!(
            e.kind == "Bosh::Clouds::VMNotFound",
            "delete_vm of an unknown cid: {}",
            describe(&e)
        );
    }
    Ok(())
}

fn reboot_vm(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let cpi = ctx.cpi.clone();
    ctx.ok(&cpi, "reboot_vm", vec![json!(vm)])?;
    ensure!(ctx.env.vm_exists(&vm), "VM {vm} is gone after reboot_vm");
    let has = ctx.ok(&cpi, "has_vm", vec![json!(vm)])?;
    ensure!(has == json!(true), "has_vm after reboot_vm answered {has}");
    Ok(())
}

fn set_vm_metadata(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let metadata = json!({"director": "conformance-director", "deployment": "conformance", "name": "web/0",
                          "job": "web", "index": "0", "id": "5f7b1c2e", "created_at": "2026-11-26T10:00:00Z"});
    let cpi = ctx.cpi.clone();
    ctx.ok(&cpi, "set_vm_metadata", vec![json!(vm), metadata.clone()])?;
    let seen = ctx.env.vm_metadata(&vm);
    for (k, v) in metadata.as_object().into_iter().flatten() {
        let want = v.as_str().unwrap_or_default();
        ensure!(
            lookup(&seen, k) == Some(want),
            "metadata {k} is {:?} in the cloud, set {want:?}",
            lookup(&seen, k)
        );
    }
    Ok(())
}

/// The string values under `key` anywhere in the bad properties.
fn bad_values(props: &Value, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![props];
    while let Some(v) = stack.pop() {
        if let Some(o) = v.as_object() {
            for (k, v) in o {
                match v.as_str() {
                    Some(s) if k == key && !s.is_empty() => out.push(s.to_owned()),
                    _ => stack.push(v),
                }
            }
        }
    }
    out
}

/// A metadata key as the cloud shows it: exactly, or in another case
/// (AWS shows `name` as the `Name` tag).
pub fn lookup<'a>(
    seen: &'a std::collections::BTreeMap<String, String>,
    key: &str,
) -> Option<&'a str> {
    seen.get(key)
        .or_else(|| {
            seen.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .map(String::as_str)
}

fn bad_cloud_properties(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let (props, key) = ctx.env.bad_vm_cloud_properties();
    let props_sent = props.clone();
    let before = ctx.env.inventory();
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let cpi = ctx.cpi.clone();
    let args = ctx.create_vm_args(&agent, &stemcell, props, nets, &[]);
    let reply = ctx.reply(&cpi, "create_vm", args)?;
    let after = ctx.env.inventory();
    match reply.error {
        None => {
            let cid = reply
                .result
                .get(0)
                .or(Some(&reply.result))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let _ = cpi.call("delete_vm", vec![json!(cid)]);
            fail!(
                "create_vm with bad cloud properties ({key}) succeeded: {}",
                reply.result
            )
        }
        Some(e) => {
            ensure!(
                e.kind == VM_CREATION_FAILED || e.kind == CLOUD_ERROR,
                "create_vm with bad cloud properties: expected VMCreationFailed or CloudError, got {}",
                describe(&e)
            );
            // Naming the key or the bad value both tell the operator what to fix.
            let values = bad_values(&props_sent, key);
            ensure!(
                e.message.contains(key) || values.iter().any(|v| e.message.contains(v.as_str())),
                "the error names neither '{key}' nor its value {values:?}: {}",
                e.message
            );
        }
    }
    ensure!(
        after == before,
        "a refused create_vm left {} behind",
        diff(&before, &after)
    );
    Ok(())
}
