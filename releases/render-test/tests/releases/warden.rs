//! bosh-warden-cpi's warden_cpi job against the fake Garden.

use crate::common::{accepted, not_rendered, refused, World};
use release_render::{set, WARDEN};
use serde_json::{json, Value};

const ABSENT: &str = "no-such-container";

fn world() -> World {
    World::start(&WARDEN, fake_garden::start_environment)
}

/// Only what the job requires, plus the directories of this environment
/// (the defaults are /var/vcap/store/... paths).
fn minimal(w: &World) -> Value {
    let c = w.config();
    let a = &c["Actions"];
    json!({"properties": {"warden_cpi": {
        "warden": {"connect_network": "tcp", "connect_address": c["Warden"]["ConnectAddress"]},
        "agent": {"mbus": a["Agent"]["Mbus"]},
        "actions": {
            "stemcells_dir": a["StemcellsDir"], "disks_dir": a["DisksDir"],
            "host_ephemeral_bind_mounts_dir": a["HostEphemeralBindMountsDir"],
            "host_persistent_bind_mounts_dir": a["HostPersistentBindMountsDir"],
        },
    }}})
}

#[test]
fn minimal_documented_and_full_manifests_are_accepted() {
    let w = world();
    let (r, _) = accepted(&WARDEN, &minimal(&w), ABSENT, "minimal");
    let c = r.config();
    assert_eq!(
        c["Actions"]["Agent"]["Blobstore"],
        json!({"Provider": "dav", "Options": {}})
    );
    assert_eq!(
        c["Actions"]["GuestEphemeralBindMountPath"],
        "/var/vcap/data"
    );
    assert!(
        r.file("bin/cpi")
            .contains("-configPath=$jobs_dir/warden_cpi/config/cpi.json"),
        "the Go job's argument"
    );
    assert!(
        w.env
            .served()
            .unwrap()
            .requests
            .iter()
            .any(|(l, _)| l.starts_with("garden:")),
        "has_vm reached the fake Garden"
    );

    // bosh-deployment's warden/cpi.yml cloud_provider properties.
    let mut documented = minimal(&w);
    set(
        &mut documented,
        "warden_cpi.actions.expand_stemcell_tarball",
        json!(false),
    );
    set(
        &mut documented,
        "warden_cpi.start_containers_with_systemd",
        json!(true),
    );
    set(
        &mut documented,
        "warden_cpi.agent.blobstore",
        json!({"provider": "local",
        "options": {"blobstore_path": "/var/vcap/micro_bosh/data/cache"}}),
    );
    let (r, _) = accepted(&WARDEN, &documented, ABSENT, "documented");
    let c = r.config();
    assert_eq!(c["start_containers_with_systemd"], true);
    assert_eq!(c["Actions"]["ExpandStemcellTarball"], false);
    assert!(r.file("bin/pre-start").contains("exec /sbin/init"));

    let mut full = documented.clone();
    for (k, v) in [
        ("warden_cpi.host_ip", json!("10.254.50.4")),
        ("warden_cpi.loopback_range", json!([100, 130])),
        (
            "warden_cpi.no_masq_cidrs",
            json!(["10.244.0.0/16", "10.245.0.0/16"]),
        ),
        ("warden_cpi.agent.ntp", json!(["time1.google.com"])),
        (
            "warden_cpi.actions.guest_ephemeral_bind_mount_path",
            json!("/var/vcap/data"),
        ),
        (
            "warden_cpi.actions.guest_persistent_bind_mounts_dir",
            json!("/warden-cpi-dev"),
        ),
    ] {
        set(&mut full, k, v);
    }
    let (r, _) = accepted(&WARDEN, &full, ABSENT, "full");
    let ctl = r.file("bin/cpi_ctl");
    assert!(ctl.contains("10.254.50.4/24"), "{ctl}");
    assert!(ctl.contains("seq 100 130"), "{ctl}");
    assert!(
        ctl.contains("--source 10.245.0.0/16 --destination 10.245.0.0/16"),
        "{ctl}"
    );
    assert_eq!(
        r.config()["Actions"]["Agent"]["NTP"],
        json!(["time1.google.com"])
    );
}

#[test]
fn wrong_types_fail_naming_the_property() {
    let w = world();
    let mut m = minimal(&w);
    set(
        &mut m,
        "warden_cpi.actions.expand_stemcell_tarball",
        json!("yes"),
    );
    let e = refused(&WARDEN, &m, ABSENT, "expand_stemcell_tarball string");
    assert!(e.contains("ExpandStemcellTarball"), "{e}");
    let mut m = minimal(&w);
    set(&mut m, "warden_cpi.warden.connect_network", json!("udp"));
    let e = refused(&WARDEN, &m, ABSENT, "connect_network udp");
    assert!(e.contains("ConnectNetwork") && e.contains("udp"), "{e}");
    let mut m = minimal(&w);
    set(&mut m, "warden_cpi.loopback_range", json!([130]));
    let e = not_rendered(&WARDEN, &m, "loopback_range of one");
    assert!(e.contains("warden_cpi.loopback_range"), "{e}");
}
