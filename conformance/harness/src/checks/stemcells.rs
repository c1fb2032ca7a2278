//! Stemcells: heavy import, light reference, twice the same, bad images,
//! and deleting what is already gone.

use super::{describe, ensure, skip, Ctx, NamedCheck, Outcome};
use crate::stemcell::Image;
use serde_json::json;

pub const CHECKS: &[NamedCheck] = &[
    ("heavy_create_use_delete", heavy_create_use_delete),
    ("light_references_image", light_references_image),
    ("same_stemcell_twice", same_stemcell_twice),
    ("corrupt_image_refused", corrupt_image_refused),
    ("truncated_image_refused", truncated_image_refused),
    ("delete_missing_stemcell", delete_missing_stemcell),
];

fn heavy_create_use_delete(ctx: &mut Ctx) -> Outcome {
    let Some(props) = ctx.env.heavy_stemcell_properties() else {
        skip!("this cloud imports no heavy stemcells");
    };
    let before = ctx.env.inventory().stemcells;
    let image = Image::Heavy(ctx.env.heavy_stemcell_image());
    let api = ctx.cpi.stemcell_api_version;
    let cid = ctx.create_stemcell(image, api, props)?;
    let during = ctx.env.inventory().stemcells;
    ensure!(
        during.len() > before.len(),
        "create_stemcell answered {cid} but the cloud holds no new image"
    );
    let vm = ctx.create_vm(&cid)?;
    ensure!(
        ctx.env.vm_exists(&vm),
        "a VM from stemcell {cid} does not exist in the cloud"
    );
    ctx.delete_vm(&vm)?;
    ctx.delete_stemcell(&cid)?;
    let after = ctx.env.inventory().stemcells;
    ensure!(
        after == before,
        "after delete_stemcell the cloud holds {after:?}, before {before:?}"
    );
    Ok(())
}

fn light_references_image(ctx: &mut Ctx) -> Outcome {
    let Some(props) = ctx.env.light_stemcell_properties() else {
        skip!("this cloud has no light stemcells");
    };
    let before = ctx.env.inventory().stemcells;
    let api = ctx.cpi.stemcell_api_version;
    let cid = ctx.create_stemcell(Image::Light, api, props)?;
    let during = ctx.env.inventory().stemcells;
    ensure!(
        during == before,
        "a light stemcell made a new image: {during:?} (before {before:?})"
    );
    let vm = ctx.create_vm(&cid)?;
    ctx.delete_vm(&vm)?;
    ctx.delete_stemcell(&cid)?;
    let after = ctx.env.inventory().stemcells;
    ensure!(
        after == before,
        "deleting a light stemcell removed the image it references: {after:?}"
    );
    Ok(())
}

/// The director may upload the same stemcell twice (two directors, a
/// re-upload with --fix): both cids work, and deleting one keeps the other.
fn same_stemcell_twice(ctx: &mut Ctx) -> Outcome {
    let first = ctx.stemcell()?;
    let second = ctx.stemcell()?;
    ctx.delete_stemcell(&first)?;
    let vm = ctx.create_vm(&second)?;
    ensure!(
        ctx.env.vm_exists(&vm),
        "no VM from the second stemcell after deleting the first"
    );
    ctx.delete_vm(&vm)?;
    ctx.delete_stemcell(&second)
}

fn bad_image(ctx: &mut Ctx, image: Image, what: &str) -> Outcome {
    let Some(props) = ctx.env.heavy_stemcell_properties() else {
        skip!("this cloud imports no heavy stemcells");
    };
    let before = ctx.env.inventory();
    let api = ctx.cpi.stemcell_api_version;
    let (path, props) = ctx.stemcell_args(image, api, props)?;
    let cpi = ctx.cpi.clone();
    let reply = ctx.reply(&cpi, "create_stemcell", vec![json!(path), props])?;
    let after = ctx.env.inventory();
    match reply.error {
        None => {
            if let Some(cid) = reply.result.as_str() {
                let _ = cpi.call("delete_stemcell", vec![json!(cid)]);
            }
            super::fail!(
                "create_stemcell of a {what} image succeeded: {}",
                reply.result
            )
        }
        Some(e) => {
            ensure!(
                !e.message.trim().is_empty(),
                "create_stemcell of a {what} image: an empty error message"
            );
            let m = e.message.to_lowercase();
            ensure!(
                ["image", "stemcell", "gzip", "tar", "corrupt", "archive", "eof"]
                    .iter()
                    .any(|w| m.contains(w)),
                "create_stemcell of a {what} image: the error does not say what is wrong: {}",
                describe(&e)
            );
        }
    }
    ensure!(
        after == before,
        "create_stemcell of a {what} image left {} behind",
        diff(&before, &after)
    );
    Ok(())
}

/// What `after` holds that `before` did not (and what went), for
/// messages: the first few, then how many more.
pub fn diff(before: &crate::Inventory, after: &crate::Inventory) -> String {
    let mut out = Vec::new();
    for (kind, b, a) in [
        ("vm", &before.vms, &after.vms),
        ("disk", &before.disks, &after.disks),
        ("stemcell", &before.stemcells, &after.stemcells),
        ("snapshot", &before.snapshots, &after.snapshots),
        ("other", &before.other, &after.other),
    ] {
        out.extend(
            a.iter()
                .filter(|x| !b.contains(x))
                .map(|x| format!("{kind} {x}")),
        );
        out.extend(
            b.iter()
                .filter(|x| !a.contains(x))
                .map(|x| format!("{kind} {x} (gone)")),
        );
    }
    const SHOWN: usize = 8;
    let more = out.len().saturating_sub(SHOWN);
    out.truncate(SHOWN);
    let mut text = out.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    format!("[{text}]")
}

fn corrupt_image_refused(ctx: &mut Ctx) -> Outcome {
    bad_image(ctx, Image::Corrupt, "corrupt")
}

fn truncated_image_refused(ctx: &mut Ctx) -> Outcome {
    let members = ctx.env.heavy_stemcell_image();
    bad_image(ctx, Image::Truncated(members), "truncated")
}

fn delete_missing_stemcell(ctx: &mut Ctx) -> Outcome {
    let cpi = ctx.cpi.clone();
    ctx.ok(
        &cpi,
        "delete_stemcell",
        vec![json!(ctx.env.unknown_cid("stemcell"))],
    )?;
    let cid = ctx.stemcell()?;
    ctx.delete_stemcell(&cid)?;
    ctx.ok(&cpi, "delete_stemcell", vec![json!(cid)])
        .map(drop)
        .map_err(|e| match e {
            super::Stop::Fail(m) => {
                super::Stop::Fail(format!("deleting a stemcell already deleted: {m}"))
            }
            other => other,
        })
}
