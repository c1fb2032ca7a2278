//! Stemcells through the real binary against moto: light ones reference an
//! AMI; heavy ones go through the EBS direct APIs into a snapshot and a
//! registered AMI.

mod common;

use harness::Environment;
use serde_json::json;
use std::io::Write;
use std::path::Path;

/// A stemcell `image` file: a gzipped tar holding `root.img`.
fn write_image(path: &Path, root_img: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(root_img.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "root.img", root_img).unwrap();
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

/// 3 MiB: blocks 0 and 4 hold data, the rest are zeros (skipped).
fn root_img() -> Vec<u8> {
    let mut img = vec![0u8; 3 * 1024 * 1024];
    img[..4096].fill(0xab);
    let b4 = 4 * 512 * 1024;
    img[b4 + 10..b4 + 20].copy_from_slice(b"bosh-stemc");
    img
}

#[test]
fn heavy_stemcell_imports_through_ebs_direct_and_boots_a_vm() {
    let Some(f) = common::fixture() else { return };
    let before = f.env.inventory();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    write_image(&image, &root_img());
    let props = f.env.heavy_stemcell_properties().unwrap();
    let cid = f.ok(
        "create_stemcell",
        vec![
            json!(image),
            props.clone(),
            json!({"tags": {"owner": "bosh"}}),
        ],
    );
    let cid = cid.as_str().unwrap().to_owned();
    assert!(cid.starts_with("ami-"), "{cid}");
    let after = f.env.inventory();
    assert!(after.stemcells.contains(&cid));
    // The snapshot the image was imported into is named on the image (moto
    // copies it into one of its own on RegisterImage; EC2 uses it as is).
    let tags = f.env.inspector().tags(&cid);
    let imported = tags
        .get("bosh_imported_snapshot_id")
        .expect("import snapshot tag")
        .clone();
    assert!(after.snapshots.contains(&imported) && !before.snapshots.contains(&imported));
    // The blocks EBS holds are exactly the non-zero ones.
    assert_eq!(f.env.inspector().snapshot_blocks(&imported), vec![0, 4]);
    assert_eq!(
        f.env
            .inspector()
            .tags(&cid)
            .get("owner")
            .map(String::as_str),
        Some("bosh")
    );

    // The same stemcell twice gives two usable cids.
    let cid2 = f.ok("create_stemcell", vec![json!(image), props, json!({})]);
    assert_ne!(cid2, json!(cid));

    let vm = f.create_vm(&cid, 1, vec![]);
    assert_eq!(
        f.env.inspector().instance_facts(&vm).unwrap()["image_id"],
        cid
    );
    f.ok("delete_vm", vec![json!(vm)]);

    f.ok("delete_stemcell", vec![json!(cid)]);
    f.ok("delete_stemcell", vec![cid2]);
    f.ok("delete_stemcell", vec![json!(cid)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn corrupt_or_truncated_image_fails_clearly_and_leaves_nothing() {
    let Some(f) = common::fixture() else { return };
    let before = f.env.inventory();
    let dir = tempfile::tempdir().unwrap();
    let props = f.env.heavy_stemcell_properties().unwrap();

    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"this is not a gzipped tar").unwrap();
    let e = f.err(
        "create_stemcell",
        vec![json!(garbage), props.clone()],
        "Bosh::Clouds::CpiError",
    );
    assert!(e.message.contains("garbage"), "{}", e.message);

    // Cut the image short: the import fails after blocks were uploaded.
    let whole = dir.path().join("whole");
    let mut img = root_img();
    img.iter_mut().step_by(4099).for_each(|b| *b = 7);
    write_image(&whole, &img);
    let bytes = std::fs::read(&whole).unwrap();
    let truncated = dir.path().join("truncated");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let e = f.err(
        "create_stemcell",
        vec![json!(truncated), props.clone()],
        "Bosh::Clouds::CpiError",
    );
    assert!(e.message.contains("truncated"), "{}", e.message);

    let empty_tar = dir.path().join("empty");
    write_image_without_root(&empty_tar);
    let e = f.err(
        "create_stemcell",
        vec![json!(empty_tar), props],
        "Bosh::Clouds::CpiError",
    );
    assert!(e.message.contains("root.img"), "{}", e.message);
    assert_eq!(
        f.env.inventory(),
        before,
        "no snapshot or image left behind"
    );
}

fn write_image_without_root(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(3);
    header.set_cksum();
    tar.append_data(&mut header, "other", &b"abc"[..]).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn light_stemcell_references_the_ami_and_deletes_nothing() {
    let Some(f) = common::fixture() else { return };
    let ami = f.env.seed().light_ami.clone();
    let cid = f.light_stemcell();
    assert_eq!(cid, format!("{ami} light"));
    f.ok("delete_stemcell", vec![json!(cid)]);
    assert!(
        f.env.inventory().stemcells.contains(&ami),
        "the light stemcell's AMI stays"
    );

    let e = f.err(
        "create_stemcell",
        vec![json!("/dev/null"), json!({"ami": {"eu-west-1": ami}})],
        "Bosh::Clouds::CloudError",
    );
    assert!(e.message.contains("us-east-1"), "{}", e.message);
    f.err(
        "create_stemcell",
        vec![
            json!("/dev/null"),
            json!({"ami": {"us-east-1": "ami-00000000000000000"}}),
        ],
        "Bosh::Clouds::CloudError",
    );
    f.ok("delete_stemcell", vec![json!("ami-00000000000000000")]);
}

#[test]
fn encrypted_light_stemcell_is_an_owned_copy() {
    let Some(f) = common::fixture() else { return };
    let before = f.env.inventory();
    let mut props = f.env.light_stemcell_properties().unwrap();
    props["encrypted"] = json!(true);
    let cid = f.ok("create_stemcell", vec![json!("/dev/null"), props]);
    let cid = cid.as_str().unwrap().to_owned();
    assert!(cid.starts_with("ami-") && !cid.ends_with(" light"), "{cid}");
    assert_ne!(cid, f.env.seed().light_ami);
    assert!(f.env.inventory().stemcells.contains(&cid));
    let vm = f.create_vm(&cid, 1, vec![]);
    f.ok("delete_vm", vec![json!(vm)]);
    f.ok("delete_stemcell", vec![json!(cid)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}
