//! Persistent disks: attach and reattach with the data kept, the registry
//! kept current, has_disk/get_disks, metadata, resize, snapshots, and the
//! refusals the director relies on.

use super::{
    describe, ensure, fail, Ctx, NamedCheck, Outcome, Stop, DISK_NOT_ATTACHED, DISK_NOT_FOUND,
    NOT_IMPLEMENTED,
};
use serde_json::json;

pub const CHECKS: &[NamedCheck] = &[
    ("attach_write_detach_reattach", attach_write_detach_reattach),
    ("attach_updates_registry_v1", attach_updates_registry_v1),
    ("has_disk_and_get_disks", has_disk_and_get_disks),
    ("set_disk_metadata", set_disk_metadata),
    ("detach_not_attached", detach_not_attached),
    ("resize_keeps_data", resize_keeps_data),
    ("snapshot_and_delete", snapshot_and_delete),
    ("delete_attached_refused", delete_attached_refused),
    ("delete_missing_disk", delete_missing_disk),
];

/// Writes `data` on the disk from inside the VM; false when the cloud gives
/// no way to reach a disk's contents.
pub fn write(ctx: &Ctx, vm: &str, disk: &str, name: &str, data: &[u8]) -> Result<bool, Stop> {
    match ctx.env.write_on_disk(vm, disk, name, data) {
        None => Ok(false),
        Some(Ok(())) => Ok(true),
        Some(Err(e)) => fail!("writing {name} on disk {disk} in VM {vm}: {e}"),
    }
}

/// Reads the file back and compares.
pub fn expect_data(ctx: &Ctx, vm: &str, disk: &str, name: &str, data: &[u8]) -> Outcome {
    match ctx.env.read_on_disk(vm, disk, name) {
        None => fail!("the cloud let the suite write on disk {disk} but not read it"),
        Some(Err(e)) => {
            fail!("reading {name} from disk {disk} in VM {vm}: {e} (the data was lost)")
        }
        Some(Ok(got)) => ensure!(
            got == data,
            "{name} on disk {disk} in VM {vm} holds {} bytes that differ from the {} written",
            got.len(),
            data.len()
        ),
    }
    Ok(())
}

/// The disk is attached to `vm` as the cloud sees it.
pub fn expect_attached(ctx: &Ctx, disk: &str, vm: Option<&str>) -> Outcome {
    let got = ctx.env.disk_attached_to(disk);
    let name = |v: Option<&str>| {
        v.map(|v| format!("VM {v}"))
            .unwrap_or_else(|| "nothing".into())
    };
    ensure!(
        got.as_deref() == vm,
        "the cloud shows disk {disk} attached to {}, expected {}",
        name(got.as_deref()),
        name(vm)
    );
    Ok(())
}

fn attach_write_detach_reattach(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm1 = ctx.create_vm(&stemcell)?;
    let disk = ctx.create_disk(1024, Some(&vm1))?;
    let cpi = ctx.cpi.clone();
    let hint = ctx.attach(&cpi, &vm1, &disk)?;
    if cpi.api_version >= 2 {
        ensure!(
            !super::settings::is_empty_hint(&hint),
            "attach_disk v2 answered an empty hint: {hint}"
        );
    }
    expect_attached(ctx, &disk, Some(&vm1))?;
    let data = format!("conformance data {}", ctx.unique()).into_bytes();
    let writable = write(ctx, &vm1, &disk, "conformance.txt", &data)?;
    ctx.detach(&vm1, &disk)?;
    expect_attached(ctx, &disk, None)?;
    let vm2 = ctx.create_vm(&stemcell)?;
    ctx.attach(&cpi, &vm2, &disk)?;
    expect_attached(ctx, &disk, Some(&vm2))?;
    if writable {
        expect_data(ctx, &vm2, &disk, "conformance.txt", &data)?;
    }
    Ok(())
}

/// `get_disks`, which must answer a list of cids.
pub fn get_disks(ctx: &Ctx, cpi: &crate::cpi::Cpi, vm: &str) -> Result<Vec<String>, Stop> {
    let listed = ctx.ok(cpi, "get_disks", vec![json!(vm)])?;
    match listed.as_array() {
        Some(a) if a.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())) => Ok(a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()),
        _ => fail!("get_disks answered {listed}, not a list of disk cids"),
    }
}

fn registry_persistent(ctx: &Ctx, vm: &str) -> Result<Vec<String>, Stop> {
    match ctx.registry.settings(&ctx.registry_key(vm)) {
        None => fail!("the registry holds no settings for VM {vm}"),
        Some(Err(e)) => fail!("{e}"),
        Some(Ok(s)) => Ok(s["disks"]["persistent"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()),
    }
}

/// Stemcell API v1: the agent learns of its disks from the registry only.
fn attach_updates_registry_v1(ctx: &mut Ctx) -> Outcome {
    let cpi = ctx.cpi.with_versions(ctx.cpi.api_version, 1);
    let stemcell = ctx.stemcell()?;
    let agent = ctx.agent_id();
    let nets = ctx.manual_networks();
    let (vm, _) = ctx.create_vm_with(&cpi, &agent, &stemcell, &nets, &[])?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    ctx.attach(&cpi, &vm, &disk)?;
    let listed = registry_persistent(ctx, &vm)?;
    ensure!(
        listed == [disk.clone()],
        "after attach_disk the registry lists persistent disks {listed:?}"
    );
    ctx.detach_with(&cpi, &vm, &disk)?;
    let listed = registry_persistent(ctx, &vm)?;
    ensure!(
        listed.is_empty(),
        "after detach_disk the registry still lists {listed:?}"
    );
    Ok(())
}

fn has_disk_and_get_disks(ctx: &mut Ctx) -> Outcome {
    let cpi = ctx.cpi.clone();
    let unknown = ctx.ok(&cpi, "has_disk", vec![json!(ctx.env.unknown_cid("disk"))])?;
    ensure!(
        unknown == json!(false),
        "has_disk of an unknown cid answered {unknown}"
    );
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    ensure!(
        ctx.env.disk_exists(&disk),
        "disk {disk} does not exist in the cloud"
    );
    let has = ctx.ok(&cpi, "has_disk", vec![json!(disk)])?;
    ensure!(
        has == json!(true),
        "has_disk after create_disk answered {has}"
    );
    // The director asks get_disks whether its disk is attached; other
    // volumes (a root or ephemeral disk) may be listed too.
    let listed = get_disks(ctx, &cpi, &vm)?;
    ensure!(
        !listed.contains(&disk),
        "get_disks before attach_disk lists the disk: {listed:?}"
    );
    ctx.attach(&cpi, &vm, &disk)?;
    let listed = get_disks(ctx, &cpi, &vm)?;
    ensure!(
        listed.contains(&disk),
        "get_disks after attach_disk does not list {disk}: {listed:?}"
    );
    ctx.detach(&vm, &disk)?;
    let listed = get_disks(ctx, &cpi, &vm)?;
    ensure!(
        !listed.contains(&disk),
        "get_disks after detach_disk still lists {disk}: {listed:?}"
    );
    ctx.delete_disk(&disk)?;
    let has = ctx.ok(&cpi, "has_disk", vec![json!(disk)])?;
    ensure!(
        has == json!(false),
        "has_disk after delete_disk answered {has}"
    );
    ensure!(
        !ctx.env.disk_exists(&disk),
        "disk {disk} still exists in the cloud after delete_disk"
    );
    Ok(())
}

fn set_disk_metadata(ctx: &mut Ctx) -> Outcome {
    let disk = ctx.create_disk(1024, None)?;
    let metadata = json!({"director": "conformance-director", "deployment": "conformance",
                          "instance_id": "5f7b1c2e", "instance_group": "web", "attached_at": "2026-11-26T10:00:00Z"});
    let cpi = ctx.cpi.clone();
    let reply = ctx.reply(
        &cpi,
        "set_disk_metadata",
        vec![json!(disk), metadata.clone()],
    )?;
    match reply.error {
        None => {}
        Some(e) if e.kind == NOT_IMPLEMENTED => fail!(
            "set_disk_metadata answers NotImplemented: the director carries on without it, \
             but the disk's metadata (deployment, instance) never reaches the cloud"
        ),
        Some(e) => fail!("set_disk_metadata: {}", describe(&e)),
    }
    let seen = ctx.env.disk_metadata(&disk);
    for (k, v) in metadata.as_object().into_iter().flatten() {
        let want = v.as_str().unwrap_or_default();
        ensure!(
            super::vms::lookup(&seen, k) == Some(want),
            "disk metadata {k} is {:?} in the cloud, set {want:?}",
            super::vms::lookup(&seen, k)
        );
    }
    Ok(())
}

fn detach_not_attached(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    let cpi = ctx.cpi.clone();
    let e = ctx.err(&cpi, "detach_disk", vec![json!(vm), json!(disk)])?;
    ensure!(
        e.kind == DISK_NOT_ATTACHED,
        "detach_disk of a disk not attached: expected DiskNotAttached, got {}",
        describe(&e)
    );
    Ok(())
}

fn resize_keeps_data(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    let cpi = ctx.cpi.clone();
    ctx.attach(&cpi, &vm, &disk)?;
    let data = b"kept across resize".to_vec();
    let writable = write(ctx, &vm, &disk, "resize.txt", &data)?;
    // The director detaches before resizing.
    ctx.detach(&vm, &disk)?;
    let reply = ctx.reply(&cpi, "resize_disk", vec![json!(disk), json!(2048)])?;
    if let Some(e) = reply.error {
        fail!("resize_disk to 2048 MiB: {}", describe(&e));
    }
    let size = ctx.env.disk_size_mb(&disk);
    ensure!(
        size.is_some_and(|s| s >= 2048),
        "after resize_disk to 2048 MiB the cloud shows {size:?} MiB"
    );
    let shrink = ctx
        .err(&cpi, "resize_disk", vec![json!(disk), json!(512)])
        .map_err(|_| {
            Stop::Fail("resize_disk to a smaller size succeeded: shrinking must be refused".into())
        })?;
    ensure!(
        shrink.kind != NOT_IMPLEMENTED,
        "shrinking answered NotImplemented after growing worked: {}",
        describe(&shrink)
    );
    ensure!(
        !shrink.message.trim().is_empty(),
        "shrinking was refused with an empty message"
    );
    let size = ctx.env.disk_size_mb(&disk);
    ensure!(
        size.is_some_and(|s| s >= 2048),
        "a refused shrink changed the disk to {size:?} MiB"
    );
    ctx.attach(&cpi, &vm, &disk)?;
    if writable {
        expect_data(ctx, &vm, &disk, "resize.txt", &data)?;
    }
    Ok(())
}

/// Snapshots are optional: NotImplemented passes; a cloud that takes them
/// shows them, deletes them, and deletes a missing one without complaint.
fn snapshot_and_delete(ctx: &mut Ctx) -> Outcome {
    let disk = ctx.create_disk(1024, None)?;
    let cpi = ctx.cpi.clone();
    let before = ctx.env.inventory().snapshots;
    let reply = ctx.reply(
        &cpi,
        "snapshot_disk",
        vec![json!(disk), json!({"director": "conformance"})],
    )?;
    let snapshot = match reply.error {
        Some(e) if e.kind == NOT_IMPLEMENTED => {
            let reply = ctx.reply(
                &cpi,
                "delete_snapshot",
                vec![json!(ctx.env.unknown_cid("snapshot"))],
            )?;
            if let Some(e) = reply.error {
                ensure!(
                    e.kind == NOT_IMPLEMENTED,
                    "delete_snapshot without snapshots: {}",
                    describe(&e)
                );
            }
            return Ok(());
        }
        Some(e) => fail!("snapshot_disk: {}", describe(&e)),
        None => super::ctx::as_cid("snapshot_disk", &reply.result)?,
    };
    ctx.track_snapshot(&snapshot);
    let during = ctx.env.inventory().snapshots;
    ensure!(
        during.len() > before.len(),
        "snapshot_disk answered {snapshot} but the cloud holds no new snapshot"
    );
    ctx.ok(&cpi, "delete_snapshot", vec![json!(snapshot)])?;
    ctx.forget_snapshot(&snapshot);
    let after = ctx.env.inventory().snapshots;
    ensure!(
        after == before,
        "after delete_snapshot the cloud holds snapshots {after:?}"
    );
    ctx.ok(&cpi, "delete_snapshot", vec![json!(snapshot)])
        .map_err(|_| Stop::Fail("delete_snapshot of a snapshot already deleted failed".into()))?;
    ctx.ok(
        &cpi,
        "delete_snapshot",
        vec![json!(ctx.env.unknown_cid("snapshot"))],
    )?;
    Ok(())
}

fn delete_attached_refused(ctx: &mut Ctx) -> Outcome {
    let stemcell = ctx.stemcell()?;
    let vm = ctx.create_vm(&stemcell)?;
    let disk = ctx.create_disk(1024, Some(&vm))?;
    let cpi = ctx.cpi.clone();
    ctx.attach(&cpi, &vm, &disk)?;
    let e = ctx.err(&cpi, "delete_disk", vec![json!(disk)]);
    ensure!(
        ctx.env.disk_exists(&disk),
        "delete_disk of an attached disk removed it"
    );
    let e = e.map_err(|_| Stop::Fail("delete_disk of an attached disk succeeded".into()))?;
    ensure!(
        !e.message.trim().is_empty(),
        "delete_disk of an attached disk: an empty message"
    );
    expect_attached(ctx, &disk, Some(&vm))
}

fn delete_missing_disk(ctx: &mut Ctx) -> Outcome {
    let cpi = ctx.cpi.clone();
    let check = |reply: crate::cpi::Reply, what: &str| -> Outcome {
        if let Some(e) = reply.error {
            ensure!(
                e.kind == DISK_NOT_FOUND,
                "delete_disk of {what}: expected success or DiskNotFound, got {}",
                describe(&e)
            );
        }
        Ok(())
    };
    let reply = ctx.reply(
        &cpi,
        "delete_disk",
        vec![json!(ctx.env.unknown_cid("disk"))],
    )?;
    check(reply, "an unknown cid")?;
    let disk = ctx.create_disk(1024, None)?;
    ctx.delete_disk(&disk)?;
    let reply = ctx.reply(&cpi, "delete_disk", vec![json!(disk)])?;
    check(reply, "a deleted disk")
}
