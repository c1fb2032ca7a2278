//! Per-call wall time of the lifecycle, median over runs, beside what the
//! incumbent CPI takes on the same kind of machine.

use crate::checks::Ctx;
use crate::cpi::Cpi;
use crate::environment::Environment;
use crate::registry::RegistryServer;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The lifecycle calls timed, in call order.
pub const CALLS: &[&str] = &[
    "info",
    "create_stemcell",
    "create_vm",
    "has_vm",
    "set_vm_metadata",
    "create_disk",
    "attach_disk",
    "detach_disk",
    "delete_disk",
    "delete_vm",
    "delete_stemcell",
];

/// The incumbent's figure for a call, in ms, where we have one.
pub fn incumbent(cloud: &str, method: &str) -> Option<&'static str> {
    match (cloud, method) {
        ("warden", "info") => Some("4 (Go warden CPI)"),
        ("warden", "create_vm") => Some("41 (Go warden CPI)"),
        ("warden", "attach_disk") => Some("23 (Go warden CPI)"),
        ("aws", _) => Some("600-800 (Ruby AWS CPI)"),
        ("openstack", _) => Some("240-350 (Ruby OpenStack CPI)"),
        ("softlayer", _) => Some("30-55 (Go SoftLayer CPI)"),
        _ => None,
    }
}

/// Medians per call; an error names the call and run that failed.
pub fn run(
    env: &dyn Environment,
    registry: &RegistryServer,
    runs: usize,
) -> Result<BTreeMap<&'static str, Duration>, String> {
    let cpi = Cpi::new(env.cpi(), Duration::from_secs(120))?;
    let mut ctx = Ctx::new(env, registry, cpi).map_err(|e| format!("starting: {e}"))?;
    let mut times: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for n in 0..runs.max(1) {
        let result = one_run(&mut ctx, &mut times);
        ctx.cleanup();
        result.map_err(|e| format!("run {}: {e}", n + 1))?;
    }
    Ok(times
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v[v.len() / 2])
        })
        .collect())
}

fn one_run(ctx: &mut Ctx, times: &mut BTreeMap<&'static str, Vec<Duration>>) -> Result<(), String> {
    let cpi: Cpi = ctx.cpi.clone();
    let (image, props) = ctx.stemcell_args_for_bench()?;
    let mut call = |method: &'static str, args: Vec<Value>| -> Result<Value, String> {
        let reply = cpi
            .call(method, args)
            .map_err(|e| format!("{method}: {e}"))?;
        if let Some(e) = reply.error {
            return Err(format!("{method}: {}: {}", e.kind, e.message));
        }
        times.entry(method).or_default().push(reply.elapsed);
        Ok(reply.result)
    };
    call("info", vec![])?;
    let stemcell = call("create_stemcell", vec![json!(image), props])?;
    ctx.track_stemcell(&stemcell);
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let vm = call(
        "create_vm",
        vec![
            json!(agent),
            stemcell.clone(),
            ctx.env.vm_cloud_properties(),
            nets,
            json!([]),
            ctx.vm_env(),
        ],
    )?;
    let vm = if vm.is_array() { vm[0].clone() } else { vm };
    ctx.track_vm(&vm);
    call("has_vm", vec![vm.clone()])?;
    call(
        "set_vm_metadata",
        vec![
            vm.clone(),
            json!({"director": "bench", "deployment": "bench"}),
        ],
    )?;
    let disk = call(
        "create_disk",
        vec![json!(1024), ctx.env.disk_cloud_properties(), vm.clone()],
    )?;
    ctx.track_disk(&disk);
    call("attach_disk", vec![vm.clone(), disk.clone()])?;
    call("detach_disk", vec![vm.clone(), disk.clone()])?;
    call("delete_disk", vec![disk])?;
    call("delete_vm", vec![vm])?;
    call("delete_stemcell", vec![stemcell])?;
    ctx.forget_made();
    Ok(())
}
