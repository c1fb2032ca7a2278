//! Faults in each wait leave nothing behind and answer the right kind; a 5xx
//! on server create makes no second server; throttling and dropped
//! connections are survived; the token never reaches stderr.

mod common;
use common::*;
use fake_openstack::{FaultAction, FaultRule, Kind};
use serde_json::json;

#[test]
fn image_failing_to_activate_is_deleted() {
    let w = world();
    w.fake.fail_next(Kind::Image);
    let image = w.image_file(1 << 20);
    let e = w.err(
        "create_stemcell",
        vec![json!(image), json!({"name": "s", "version": "1"})],
    );
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(e.message.contains("killed"), "{}", e.message);
    assert!(
        w.fake.images().is_empty(),
        "left behind: {:?}",
        w.fake.images()
    );
}

#[test]
fn truncated_image_fails_the_upload_and_leaves_no_image() {
    let w = world();
    let image = w.image_file(4 << 20);
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() / 2]).unwrap();
    let e = w.err(
        "create_stemcell",
        vec![json!(image), json!({"name": "s", "version": "1"})],
    );
    assert_eq!(e.kind, "Bosh::Clouds::CpiError");
    assert!(e.message.contains("root.img"), "{}", e.message);
    assert!(
        w.fake.images().is_empty(),
        "left behind: {:?}",
        w.fake.images()
    );
}

#[test]
fn server_failing_to_boot_is_removed_with_its_ports() {
    let w = world();
    let stemcell = w.light_stemcell();
    w.fake.fail_next(Kind::Server);
    let e = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.30")}),
        )
        .unwrap_err();
    assert_eq!(e.kind, "Bosh::Clouds::VMCreationFailed");
    assert!(e.ok_to_retry);
    assert!(e.message.contains("ERROR"), "{}", e.message);
    assert!(w.fake.servers().is_empty(), "{:?}", w.fake.servers());
    assert!(w.fake.ports().is_empty(), "{:?}", w.fake.ports());
}

#[test]
fn a_500_after_server_create_makes_no_second_server() {
    let w = world();
    let stemcell = w.light_stemcell();
    w.fake.inject(FaultRule::new(
        Some("POST"),
        "/compute/v2.1/servers",
        FaultAction::StatusAfter { code: 500 },
    ));
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.31")}),
        )
        .unwrap();
    assert_eq!(w.count_calls("POST /compute/v2.1/servers"), 1);
    assert_eq!(w.fake.servers().len(), 1);
    assert_eq!(w.fake.servers()[0]["id"], vm.as_str());
}

#[test]
fn a_500_before_server_create_tries_again_once() {
    let w = world();
    let stemcell = w.light_stemcell();
    w.fake.inject(FaultRule::new(
        Some("POST"),
        "/compute/v2.1/servers",
        FaultAction::Status {
            code: 500,
            retry_after: None,
        },
    ));
    w.create_vm(
        &stemcell,
        json!({"instance_type": "m1.small"}),
        json!({"default": World::manual("10.0.0.32")}),
    )
    .unwrap();
    assert_eq!(w.count_calls("POST /compute/v2.1/servers"), 2);
    assert_eq!(w.fake.servers().len(), 1);
}

#[test]
fn volume_failing_to_create_is_deleted() {
    let w = world();
    w.fake.fail_next(Kind::Volume);
    let e = w.err("create_disk", vec![json!(1024), json!({}), json!(null)]);
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(
        w.fake.volumes().is_empty(),
        "{:?} {:?} {}",
        w.fake.volumes(),
        w.fake.calls(),
        w.cpi.transcript()[0].stderr
    );
}

#[test]
fn attachment_that_fails_is_undone() {
    let w = world();
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.medium"}),
            json!({"default": World::manual("10.0.0.33")}),
        )
        .unwrap();
    let disk = w.ok("create_disk", vec![json!(1024), json!({}), json!(vm)]);
    w.fake.fail_next(Kind::Volume);
    let e = w.err("attach_disk", vec![json!(vm), disk.clone()]);
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert_eq!(w.ok("get_disks", vec![json!(vm)]), json!([]));
}

#[test]
fn snapshot_failing_is_deleted() {
    let w = world();
    let disk = w.ok("create_disk", vec![json!(1024), json!({}), json!(null)]);
    w.fake.fail_next(Kind::Snapshot);
    let e = w.err("snapshot_disk", vec![disk, json!({})]);
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(w.fake.snapshots().is_empty(), "{:?}", w.fake.snapshots());
}

#[test]
fn throttling_is_retried_after_retry_after() {
    let w = world();
    w.fake.inject(
        FaultRule::new(
            Some("GET"),
            "/volumes/",
            FaultAction::Status {
                code: 429,
                retry_after: Some(1),
            },
        )
        .times(1),
    );
    w.fake.inject(
        FaultRule::new(
            Some("POST"),
            "/volumes",
            FaultAction::Status {
                code: 413,
                retry_after: Some(0),
            },
        )
        .times(1),
    );
    let disk = w.ok("create_disk", vec![json!(1024), json!({}), json!(null)]);
    assert_eq!(w.fake.volumes().len(), 1);
    assert_eq!(w.fake.volumes()[0]["id"], disk);
}

#[test]
fn a_dropped_connection_on_a_read_is_survived() {
    let w = world();
    let disk = w.ok("create_disk", vec![json!(1024), json!({}), json!(null)]);
    w.fake
        .inject(FaultRule::new(Some("GET"), "/volumes/", FaultAction::Drop));
    assert_eq!(w.ok("has_disk", vec![disk]), json!(true));
}

#[test]
fn persistent_errors_end_within_the_bound_with_the_cloud_message() {
    let w = world();
    w.fake.inject(
        FaultRule::new(
            Some("GET"),
            "/volumes/",
            FaultAction::Status {
                code: 500,
                retry_after: None,
            },
        )
        .times(0),
    );
    let e = w.err("has_disk", vec![json!("vol-1")]);
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(e.message.contains("injected fault"), "{}", e.message);
    assert!(
        !e.message.contains("computeFault"),
        "the message, not the body: {}",
        e.message
    );
}

#[test]
fn a_401_reauthenticates_once() {
    let w = world();
    w.fake.inject(
        FaultRule::new(
            Some("GET"),
            "/volumes/",
            FaultAction::Status {
                code: 401,
                retry_after: None,
            },
        )
        .times(1),
    );
    assert_eq!(w.ok("has_disk", vec![json!("vol-1")]), json!(false));
    assert_eq!(w.count_calls("POST /identity/v3/auth/tokens"), 2);
}

#[test]
fn the_token_and_passwords_never_reach_stderr() {
    let w = world();
    let stemcell = w.light_stemcell();
    let reply = w
        .cpi
        .call(
            "create_vm",
            vec![
                json!("agent-s"),
                json!(stemcell),
                json!({"instance_type": "m1.small"}),
                json!({"default": World::manual("10.0.0.34")}),
                json!([]),
                json!({}),
            ],
        )
        .unwrap();
    assert!(reply.error.is_none());
    let all: String = w
        .cpi
        .transcript()
        .iter()
        .map(|r| format!("{}\n{}", r.stderr, r.stdout))
        .collect();
    assert!(all.contains("create_vm"), "the transcript holds the calls");
    assert!(!all.contains(PASSWORD));
    assert!(
        !all.contains("gAAAAA"),
        "a Keystone token reached the output"
    );
}

#[test]
fn a_refused_or_dropped_upload_is_sent_again_from_the_file() {
    let w = world();
    w.fake.inject(
        FaultRule::new(
            Some("PUT"),
            "/file",
            FaultAction::Status {
                code: 503,
                retry_after: None,
            },
        )
        .times(1),
    );
    w.fake
        .inject(FaultRule::new(Some("PUT"), "/file", FaultAction::Drop).times(1));
    let image = w.image_file(2 << 20);
    let id = w.ok(
        "create_stemcell",
        vec![json!(image), json!({"name": "s", "version": "1"})],
    );
    assert_eq!(w.fake.image_bytes(id.as_str().unwrap()), Some(2 << 20));
    assert_eq!(
        w.fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("PUT "))
            .count(),
        3
    );
    assert_eq!(w.fake.images().len(), 1);
}
