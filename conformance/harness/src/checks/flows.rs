//! The director's and create-env's real call sequences, step by step, each
//! ending with the cloud's inventory as the caller expects it.

use super::disks::{expect_attached, expect_data, write};
use super::stemcells::diff;
use super::{describe, ensure, fail, Ctx, NamedCheck, Outcome, NOT_IMPLEMENTED};
use serde_json::json;

pub const CHECKS: &[NamedCheck] = &[
    ("deploy", deploy_flow),
    ("recreate", recreate),
    ("resurrect", resurrect),
    ("delete_deployment", delete_deployment),
    ("create_env_disk_migration", create_env_disk_migration),
];

struct Deployed {
    stemcell: String,
    vm: String,
    disk: String,
}

fn vm_metadata() -> serde_json::Value {
    json!({"director": "conformance-director", "deployment": "conformance", "name": "db/0", "job": "db", "index": "0"})
}

fn disk_metadata() -> serde_json::Value {
    json!({"director": "conformance-director", "deployment": "conformance", "instance_id": "db-0", "instance_group": "db"})
}

/// create_vm → set_vm_metadata, with `disks` passed as the director does
/// on recreate (so the cloud may place the VM near them).
fn place_vm(ctx: &mut Ctx, stemcell: &str, disks: &[String]) -> Result<String, super::Stop> {
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let cpi = ctx.cpi.clone();
    let (vm, _) = ctx.create_vm_with(&cpi, &agent, stemcell, &nets, disks)?;
    metadata(ctx, "set_vm_metadata", &vm, vm_metadata())?;
    Ok(vm)
}

/// attach_disk → set_disk_metadata.
fn attach_persistent(ctx: &mut Ctx, vm: &str, disk: &str) -> Outcome {
    let cpi = ctx.cpi.clone();
    ctx.attach(&cpi, vm, disk)?;
    metadata(ctx, "set_disk_metadata", disk, disk_metadata())?;
    Ok(())
}

/// The director rescues NotImplemented from the metadata calls and goes
/// on; so does the flow. True when the cloud took the metadata.
fn metadata(
    ctx: &mut Ctx,
    method: &str,
    cid: &str,
    metadata: serde_json::Value,
) -> Result<bool, super::Stop> {
    let cpi = ctx.cpi.clone();
    let reply = ctx.reply(&cpi, method, vec![json!(cid), metadata])?;
    match reply.error {
        None => Ok(true),
        Some(e) if e.kind == NOT_IMPLEMENTED => Ok(false),
        Some(e) => fail!("{method}: {}", describe(&e)),
    }
}

/// create_stemcell → create_vm(…, [], env) → set_vm_metadata →
/// create_disk(size, props, vm) → attach_disk → set_disk_metadata.
fn deploy(ctx: &mut Ctx) -> Result<Deployed, super::Stop> {
    let stemcell = ctx.stemcell()?;
    let vm = place_vm(ctx, &stemcell, &[])?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    attach_persistent(ctx, &vm, &disk)?;
    ensure!(
        ctx.env.vm_exists(&vm),
        "after deploy VM {vm} does not exist"
    );
    expect_attached(ctx, &disk, Some(&vm))?;
    Ok(Deployed { stemcell, vm, disk })
}

fn deploy_flow(ctx: &mut Ctx) -> Outcome {
    let before = ctx.env.inventory();
    let d = deploy(ctx)?;
    let after = ctx.env.inventory();
    // A VM may bring volumes and ports of its own: only "more" is certain.
    ensure!(
        after.vms.len() > before.vms.len() && after.disks.len() > before.disks.len(),
        "after deploy the cloud changed by {}, expected a VM and a disk more",
        diff(&before, &after)
    );
    // Whatever metadata the cloud takes must show in it.
    if metadata(ctx, "set_vm_metadata", &d.vm, vm_metadata())? {
        let md = ctx.env.vm_metadata(&d.vm);
        ensure!(
            md.get("deployment").map(String::as_str) == Some("conformance"),
            "VM metadata not in the cloud: {md:?}"
        );
    }
    if metadata(ctx, "set_disk_metadata", &d.disk, disk_metadata())? {
        let md = ctx.env.disk_metadata(&d.disk);
        ensure!(
            md.get("instance_group").map(String::as_str) == Some("db"),
            "disk metadata not in the cloud: {md:?}"
        );
    }
    Ok(())
}

/// snapshot_disk? → detach_disk → delete_vm → create_vm(…, [disk], …) →
/// set_vm_metadata → attach_disk → set_disk_metadata.
fn recreate(ctx: &mut Ctx) -> Outcome {
    let d = deploy(ctx)?;
    let data = format!("recreate {}", ctx.unique()).into_bytes();
    let writable = write(ctx, &d.vm, &d.disk, "flow.txt", &data)?;
    let cpi = ctx.cpi.clone();
    let snap = ctx.reply(&cpi, "snapshot_disk", vec![json!(d.disk), disk_metadata()])?;
    match (&snap.error, snap.result.as_str()) {
        (Some(e), _) if e.kind == NOT_IMPLEMENTED => {}
        (Some(e), _) => fail!("snapshot_disk before recreate: {}", describe(e)),
        (None, Some(s)) => ctx.track_snapshot(s),
        (None, None) => fail!("snapshot_disk answered {} instead of a cid", snap.result),
    }
    ctx.detach(&d.vm, &d.disk)?;
    ctx.delete_vm(&d.vm)?;
    let vm = place_vm(ctx, &d.stemcell, std::slice::from_ref(&d.disk))?;
    attach_persistent(ctx, &vm, &d.disk)?;
    ensure!(
        !ctx.env.vm_exists(&d.vm),
        "the old VM {} still exists after recreate",
        d.vm
    );
    ensure!(ctx.env.vm_exists(&vm), "the new VM {vm} does not exist");
    expect_attached(ctx, &d.disk, Some(&vm))?;
    if writable {
        expect_data(ctx, &vm, &d.disk, "flow.txt", &data)?;
    }
    Ok(())
}

/// The VM vanished: has_vm is false → delete_vm succeeds → recreate with
/// the same persistent disk, data intact.
fn resurrect(ctx: &mut Ctx) -> Outcome {
    let d = deploy(ctx)?;
    let data = format!("resurrect {}", ctx.unique()).into_bytes();
    let writable = write(ctx, &d.vm, &d.disk, "flow.txt", &data)?;
    ctx.env.destroy_vm_out_of_band(&d.vm);
    let cpi = ctx.cpi.clone();
    let has = ctx.ok(&cpi, "has_vm", vec![json!(d.vm)])?;
    ensure!(
        has == json!(false),
        "has_vm of a VM destroyed behind the CPI's back answered {has}"
    );
    let reply = ctx.reply(&cpi, "delete_vm", vec![json!(d.vm)])?;
    if let Some(e) = reply.error {
        ensure!(
            e.kind == "Bosh::Clouds::VMNotFound",
            "delete_vm of the vanished VM: {}",
            describe(&e)
        );
    }
    ctx.forget_vm(&d.vm);
    let vm = place_vm(ctx, &d.stemcell, std::slice::from_ref(&d.disk))?;
    attach_persistent(ctx, &vm, &d.disk)?;
    expect_attached(ctx, &d.disk, Some(&vm))?;
    if writable {
        expect_data(ctx, &vm, &d.disk, "flow.txt", &data)?;
    }
    Ok(())
}

/// delete_vm with the disk still attached → delete_disk → delete_stemcell:
/// the cloud is as before the deploy.
fn delete_deployment(ctx: &mut Ctx) -> Outcome {
    let before = ctx.env.inventory();
    let d = deploy(ctx)?;
    ctx.delete_vm(&d.vm)?;
    ctx.delete_disk(&d.disk)?;
    ctx.delete_stemcell(&d.stemcell)?;
    let after = ctx.env.inventory();
    ensure!(
        after == before,
        "after deleting the deployment the cloud still differs: {}",
        diff(&before, &after)
    );
    Ok(())
}

/// create-env never resizes: a new, bigger disk is attached beside the old
/// one, the agent copies the data, the old one is detached and deleted.
fn create_env_disk_migration(ctx: &mut Ctx) -> Outcome {
    let d = deploy(ctx)?;
    let data = format!("migrate {}", ctx.unique()).into_bytes();
    let writable = write(ctx, &d.vm, &d.disk, "flow.txt", &data)?;
    let new_disk = ctx.create_disk(2048, Some(&d.vm))?;
    attach_persistent(ctx, &d.vm, &new_disk)?;
    expect_attached(ctx, &d.disk, Some(&d.vm))?;
    expect_attached(ctx, &new_disk, Some(&d.vm))?;
    let cpi = ctx.cpi.clone();
    let listed = super::disks::get_disks(ctx, &cpi, &d.vm)?;
    ensure!(
        listed.contains(&d.disk) && listed.contains(&new_disk),
        "with both disks attached get_disks answered {listed:?}"
    );
    if writable {
        // What the agent does: copy the old disk's contents to the new one.
        expect_data(ctx, &d.vm, &d.disk, "flow.txt", &data)?;
        write(ctx, &d.vm, &new_disk, "flow.txt", &data)?;
    }
    ctx.detach(&d.vm, &d.disk)?;
    ctx.delete_disk(&d.disk)?;
    ensure!(
        !ctx.env.disk_exists(&d.disk),
        "the old disk {} still exists",
        d.disk
    );
    expect_attached(ctx, &new_disk, Some(&d.vm))?;
    let listed = super::disks::get_disks(ctx, &cpi, &d.vm)?;
    ensure!(
        listed.contains(&new_disk) && !listed.contains(&d.disk),
        "after the migration get_disks answered {listed:?}"
    );
    if writable {
        expect_data(ctx, &d.vm, &new_disk, "flow.txt", &data)?;
    }
    Ok(())
}
