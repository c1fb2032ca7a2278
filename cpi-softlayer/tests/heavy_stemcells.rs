//! Heavy stemcells through the binary: the image streamed into the fake's
//! object storage in segments, imported with createFromExternalSource,
//! waited on, usable for VMs and deleted with its objects; bad images and
//! faults part-way leave nothing behind; object storage secrets stay out
//! of the logs.

mod common;

use common::{setup, Setup};
use fake_softlayer::{Action, Outcome};
use flate2::write::GzEncoder;
use harness::Environment;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

const TEMPLATE: &str = "SoftLayer_Virtual_Guest_Block_Device_Template_Group";

/// Bytes that do not compress away.
fn pattern(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A stemcell `image` as BOSH builds it: a gzipped tar holding `root.img`.
fn tar_image(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("image");
    let gz = GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "root.img", bytes).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    path
}

/// The Go CPI's layout: the disk image gzipped, no tar.
fn gzip_image(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("image.gz");
    let mut gz = GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap();
    path
}

fn props(s: &Setup) -> Value {
    s.env.heavy_stemcell_properties().expect("heavy stemcells")
}

fn templates(s: &Setup) -> Vec<u64> {
    s.env
        .fake
        .with_state(|st| st.templates.keys().copied().collect())
}

/// The bytes of an object as the fake stores them (segments joined).
fn object_bytes(s: &Setup, container: &str, object: &str) -> Option<Vec<u8>> {
    s.env.fake.with_state(|st| {
        let o = st.swift.object(container, object)?;
        let files: Vec<PathBuf> = match &o.manifest {
            Some(m) => st
                .swift
                .segments(m)
                .into_iter()
                .map(|(_, s)| s.file.clone())
                .collect(),
            None => vec![o.file.clone()],
        };
        let mut all = Vec::new();
        for f in files {
            all.extend(std::fs::read(f).ok()?);
        }
        Some(all)
    })
}

/// Nothing new in the cloud: the templates of before, no objects.
fn assert_nothing_left(s: &Setup, before: &[u64], what: &str) {
    assert_eq!(templates(s), before, "{what}: image templates left behind");
    assert_eq!(
        s.env.fake.swift_listing(),
        Vec::<String>::new(),
        "{what}: objects left behind"
    );
}

#[test]
fn heavy_import_streams_the_image_and_delete_removes_template_and_objects() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB and a bit: five 256 KiB segments, the last one short.
    let bytes = pattern((1 << 20) + 17);
    let image = tar_image(dir.path(), &bytes);
    s.env.fake.set_import(3, Outcome::Ready);
    let before = templates(&s);

    let info = s.ok("info", json!([]));
    assert!(
        info["stemcell_formats"]
            .as_array()
            .unwrap()
            .contains(&json!("softlayer-ovf")),
        "info claims heavy stemcells: {info}"
    );
    let cid = s.ok("create_stemcell", json!([image, props(&s)]));
    let id: u64 = cid.as_str().expect("cid").parse().expect("an integer id");
    assert!(
        s.env.fake.count(&format!("{TEMPLATE}::getObject")) >= 4,
        "the import was waited on"
    );

    let (uri, note, os, boot, gid) = s.env.fake.with_state(|st| {
        let t = st.templates.get(&id).expect("the template exists");
        assert!(t.import.is_none(), "the template is active");
        (
            t.uri.clone().unwrap(),
            t.note.clone().unwrap_or_default(),
            t.os_code.clone(),
            t.boot_mode.clone(),
            t.global_identifier.clone(),
        )
    });
    assert_eq!(os.as_deref(), Some("UBUNTU_22_64"));
    assert_eq!(boot.as_deref(), Some("HVM"));
    assert!(note.contains("cpi-softlayer"), "{note}");
    let path = uri
        .strip_prefix("swift://SLOS278444-2@lon02/")
        .unwrap_or_else(|| panic!("uri {uri}"));
    let (container, object) = path.split_once('/').unwrap();
    assert_eq!(
        object_bytes(&s, container, object).as_deref(),
        Some(&bytes[..]),
        "the object holds root.img exactly"
    );
    let segments = s
        .env
        .fake
        .with_state(|st| st.swift.segments(&format!("{container}/{object}/")).len());
    assert_eq!(segments, 5, "uploaded as 256 KiB segments");
    assert_eq!(
        s.env.fake.count("Swift::putObject"),
        6,
        "five segments and a manifest"
    );

    let vm = s.ok(
        "create_vm",
        s.create_vm_args(&id.to_string(), s.env.dynamic_network()),
    );
    let vm = vm[0].as_str().unwrap().to_owned();
    let used = s
        .env
        .fake
        .with_state(|st| st.guests.values().next().map(|g| g.template_gid.clone()));
    assert_eq!(used, Some(gid), "the VM boots from the imported template");
    s.ok("delete_vm", json!([vm]));

    s.ok("delete_stemcell", json!([cid]));
    assert_nothing_left(&s, &before, "delete_stemcell");
    s.ok("delete_stemcell", json!([cid]));
}

#[test]
fn the_go_cpis_gzipped_disk_image_imports_too() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let bytes = pattern(300_000);
    let image = gzip_image(dir.path(), &bytes);
    let cid = s.ok("create_stemcell", json!([image, props(&s)]));
    let id: u64 = cid.as_str().unwrap().parse().unwrap();
    let uri = s
        .env
        .fake
        .with_state(|st| st.templates[&id].uri.clone().unwrap());
    let (container, object) = uri
        .rsplit_once('@')
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1
        .split_once('/')
        .unwrap();
    assert_eq!(
        object_bytes(&s, container, object).as_deref(),
        Some(&bytes[..])
    );
    s.ok("delete_stemcell", json!([cid]));
    assert!(s.env.fake.swift_listing().is_empty());
}

#[test]
fn light_stemcell_templates_are_kept() {
    let s = setup();
    let before = templates(&s);
    let cid = s.stemcell();
    s.ok("delete_stemcell", json!([cid]));
    assert_eq!(templates(&s), before, "the operator's template stays");
}

#[test]
fn corrupt_and_truncated_images_are_refused_leaving_nothing() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let before = templates(&s);

    let corrupt = dir.path().join("corrupt");
    std::fs::write(&corrupt, b"not a stemcell image at all\n".repeat(100)).unwrap();
    let e = s.err("create_stemcell", json!([corrupt, props(&s)]));
    assert_eq!(e.kind, "Bosh::Clouds::CpiError", "{e:?}");
    assert!(
        e.message.contains("corrupt") && e.message.contains("gzip"),
        "{}",
        e.message
    );
    assert_eq!(
        s.env.fake.count("Swift::auth"),
        0,
        "refused before touching object storage"
    );
    assert_nothing_left(&s, &before, "a corrupt image");

    // Cut in the third segment: two segments are uploaded before it shows.
    let image = tar_image(dir.path(), &pattern(3 << 20));
    let full = std::fs::read(&image).unwrap();
    std::fs::write(&image, &full[..full.len() / 4]).unwrap();
    let e = s.err("create_stemcell", json!([image, props(&s)]));
    assert!(e.message.contains("truncated"), "{}", e.message);
    assert!(
        s.env.fake.count("Swift::putObject") >= 2,
        "the upload had started"
    );
    assert_eq!(
        s.env
            .fake
            .count(&format!("{TEMPLATE}::createFromExternalSource")),
        0
    );
    assert_nothing_left(&s, &before, "a truncated image");
}

#[test]
fn faults_during_upload_leave_nothing() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let image = tar_image(dir.path(), &pattern(1 << 20));
    let before = templates(&s);

    s.env.fake.fail_nth(
        Some("Swift::putObject"),
        3,
        Action::public("disk full (injected)"),
    );
    let e = s.err("create_stemcell", json!([image, props(&s)]));
    assert!(
        e.message.contains("segment 2") && e.message.contains("disk full"),
        "{}",
        e.message
    );
    assert_nothing_left(&s, &before, "an upload refused");

    s.env
        .fake
        .fail_nth(Some("Swift::putObject"), 2, Action::Drop);
    s.err("create_stemcell", json!([image, props(&s)]));
    assert_nothing_left(&s, &before, "an upload dropped");

    // The manifest, after every segment is in (a 403 is not retried; a
    // 500 would be, the PUT being idempotent).
    let refused = Action::Error {
        status: 403,
        code: String::new(),
        message: "manifest refused (injected)".into(),
    };
    s.env.fake.fail_nth(Some("Swift::putObject"), 5, refused);
    let e = s.err("create_stemcell", json!([image, props(&s)]));
    assert!(e.message.contains("manifest refused"), "{}", e.message);
    assert_nothing_left(&s, &before, "a manifest refused");

    // The import itself refused.
    s.env.fake.fail_nth(
        Some(&format!("{TEMPLATE}::createFromExternalSource")),
        1,
        Action::public("import refused (injected)"),
    );
    let e = s.err("create_stemcell", json!([image, props(&s)]));
    assert!(e.message.contains("import refused"), "{}", e.message);
    assert_nothing_left(&s, &before, "an import refused");
}

#[test]
fn failures_while_waiting_for_the_template_leave_nothing() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let image = tar_image(dir.path(), &pattern(200_000));
    let before = templates(&s);

    s.env.fake.set_import(2, Outcome::Fails);
    let e = s.err("create_stemcell", json!([image, props(&s)]));
    assert!(e.message.contains("failed"), "{}", e.message);
    assert_nothing_left(&s, &before, "a failed import");

    s.env.fake.set_import(2, Outcome::Ready);
    s.env.fake.fail_nth(
        Some(&format!("{TEMPLATE}::getObject")),
        2,
        Action::public("refused (injected)"),
    );
    let e = s.err("create_stemcell", json!([image, props(&s)]));
    assert!(e.message.contains("refused (injected)"), "{}", e.message);
    assert_eq!(
        s.env.fake.count(&format!("{TEMPLATE}::deleteObject")),
        2,
        "the templates were deleted"
    );
    assert_nothing_left(&s, &before, "a refused poll");

    s.env.fake.set_import(0, Outcome::NeverFinishes);
    s.env
        .edit_config(|c| {
            c["cloud"]["properties"]["softlayer"]["timeouts"]["stemcell_ready"] = json!(0.5)
        })
        .unwrap();
    let e = s.err("create_stemcell", json!([image, props(&s)]));
    assert!(e.message.contains("timed out"), "{}", e.message);
    assert_nothing_left(&s, &before, "an import that never ends");
}

#[test]
fn object_storage_secrets_stay_out_of_logs() {
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let image = tar_image(dir.path(), &pattern(300_000));
    let mut replies = vec![s.call("create_stemcell", json!([image, props(&s)]))];
    let cid = replies[0].result.clone();
    replies.push(s.call("delete_stemcell", json!([cid])));
    s.env
        .fake
        .fail_nth(Some("Swift::putObject"), 2, Action::public("refused"));
    replies.push(s.call("create_stemcell", json!([image, props(&s)])));
    let secrets = s.env.secrets();
    let tokens = s.env.fake.with_state(|st| st.swift.tokens.clone());
    assert_eq!(tokens.len(), 3, "each call authenticated once");
    assert!(
        tokens.iter().all(|t| secrets.contains(t)),
        "the environment reports tokens as secrets"
    );
    for r in &replies {
        assert!(r.stderr.contains("stemcell"), "the CPI logs:\n{}", r.stderr);
        for secret in &secrets {
            assert!(
                !r.stderr.contains(secret.as_str()),
                "secret in stderr:\n{}",
                r.stderr
            );
            assert!(
                !r.log.contains(secret.as_str()),
                "secret in log:\n{}",
                r.log
            );
        }
    }
}
