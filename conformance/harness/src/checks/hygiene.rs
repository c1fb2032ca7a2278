//! Hygiene over the whole run: no secret in any stderr or `log`, and the
//! cloud holding at the end exactly what it held at the start.

use super::stemcells::diff;
use super::{ensure, Ctx, NamedCheck, Outcome};
use serde_json::{json, Value};

pub const CHECKS: &[NamedCheck] = &[
    ("no_secrets_logged", no_secrets_logged),
    ("inventory_restored", inventory_restored),
];

/// Strings shorter than this are too common to mean a leak.
const MIN_SECRET_LEN: usize = 6;

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "password",
        "secret",
        "token",
        "apikey",
        "privatekey",
        "credential",
        "accesskey",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Every string under a secret-looking key, and every password in a URL.
pub fn secrets_in(value: &Value, under_secret: bool, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if under_secret {
                out.push(s.clone());
            }
            if let Some((_, rest)) = s.split_once("://") {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                if let Some((userinfo, _)) = authority.rsplit_once('@') {
                    if let Some((_, pass)) = userinfo.split_once(':') {
                        out.push(pass.to_owned());
                    }
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| secrets_in(v, under_secret, out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, v)| secrets_in(v, under_secret || is_secret_key(k), out)),
        _ => {}
    }
}

/// Runs the calls that carry secrets (settings with mbus and blobstore
/// credentials, the env password, the registry), then reads every stderr
/// and `log` of the whole run.
fn no_secrets_logged(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let v1 = ctx.cpi.with_versions(ctx.cpi.api_version, 1);
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let (vm1, _) = ctx.create_vm_with(&v1, &agent, &stemcell, &nets, &[])?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    let cpi = ctx.cpi.clone();
    ctx.attach(&cpi, &vm, &disk)?;
    ctx.ok(&v1, "delete_vm", vec![json!(vm1)])?;
    ctx.forget_vm(&vm1);

    let mut secrets = ctx.env.secrets();
    secrets.push(ctx.env_password.clone());
    secrets.push(ctx.registry.endpoint().password.clone());
    if let Some(agent) = ctx.env.agent_config() {
        secrets_in(&agent, false, &mut secrets);
    }
    secrets.retain(|s| s.len() >= MIN_SECRET_LEN);
    secrets.sort();
    secrets.dedup();
    ensure!(
        !secrets.is_empty(),
        "no secret to look for: the environment reports none"
    );
    for record in ctx.cpi.transcript() {
        let log = crate::cpi::parse_response(&record.stdout)
            .map(|(_, _, log)| log)
            .unwrap_or_default();
        for (place, text) in [("stderr", &record.stderr), ("log", &log)] {
            if let Some(i) = secrets.iter().position(|s| text.contains(s.as_str())) {
                let s = &secrets[i];
                let shown = format!(
                    "{}…({} chars)",
                    s.chars().take(2).collect::<String>(),
                    s.len()
                );
                super::fail!(
                    "secret {shown} appears in the {place} of a {} call",
                    record.method
                );
            }
        }
    }
    Ok(())
}

fn inventory_restored(ctx: &mut Ctx) -> Outcome {
    let now = ctx.env.inventory();
    ensure!(
        now == ctx.start_inventory,
        "the cloud holds what the suite left behind: {}",
        diff(&ctx.start_inventory, &now)
    );
    let left = ctx.registry.instances();
    ensure!(
        left.is_empty(),
        "the registry still holds settings for VMs {left:?}"
    );
    Ok(())
}
