//! bosh-softlayer-cpi's softlayer_cpi job against the fake SoftLayer.

use crate::common::{accepted, not_rendered, refused, through_proxy, World};
use harness::forward_proxy::ForwardProxy;
use release_render::{set, SOFTLAYER};
use serde_json::{json, Value};

const ABSENT: &str = "98765432";

fn world() -> World {
    World::start(&SOFTLAYER, fake_softlayer::start_environment)
}

/// What the incumbent template cannot render without (registry user and
/// password, the dav blobstore's address and agent credentials, NATS),
/// the account, and the fake's endpoint.
fn minimal(w: &World) -> Value {
    let s = &w.config()["cloud"]["properties"]["softlayer"];
    let reg = w.registry.endpoint();
    json!({"properties": {
        "softlayer": {"username": s["username"], "api_key": s["api_key"], "api_endpoint": s["api_endpoint"]},
        "registry": {"username": reg.username, "password": reg.password, "host": reg.host, "port": reg.port},
        "blobstore": {"address": "10.0.0.6", "agent": {"user": "agent", "password": "blob-pw"}},
        "nats": {"password": "nats-pw", "address": "10.0.0.6"},
    }})
}

#[test]
fn minimal_documented_and_full_manifests_are_accepted() {
    let w = world();
    let (r, _) = accepted(&SOFTLAYER, &minimal(&w), ABSENT, "minimal");
    let p = &r.config()["cloud"]["properties"];
    assert_eq!(p["agent"]["mbus"], "nats://nats:nats-pw@10.0.0.6:4222");
    assert_eq!(
        p["agent"]["blobstore"]["options"]["endpoint"],
        "http://10.0.0.6:25250"
    );
    assert!(r
        .file("bin/cpi")
        .contains("-configFile=$JOBS_DIR/softlayer_cpi/config/cpi.json"));

    // bosh-deployment's softlayer/cpi.yml and bosh.yml, without the SSH key
    // properties (unsupported, below): create-env's agent mbus, a local
    // blobstore as create-env has.
    let mut documented = minimal(&w);
    set(
        &mut documented,
        "agent.mbus",
        json!("https://mbus:mbus-pw@0.0.0.0:6868"),
    );
    set(
        &mut documented,
        "blobstore",
        json!({"provider": "local", "path": "/var/vcap/micro_bosh/data/cache"}),
    );
    let (r, _) = accepted(&SOFTLAYER, &documented, ABSENT, "documented");
    let p = &r.config()["cloud"]["properties"];
    assert_eq!(
        p["agent"]["blobstore"],
        json!({"provider": "local", "options": {"blobstore_path": "/var/vcap/micro_bosh/data/cache"}})
    );
    assert_eq!(p["agent"]["mbus"], "https://mbus:mbus-pw@0.0.0.0:6868");

    let s = &w.config()["cloud"]["properties"]["softlayer"];
    let reg = w.registry.endpoint();
    let mut full = minimal(&w);
    for (k, v) in [
        ("softlayer.disable_os_reload", json!(true)),
        ("softlayer.trace", json!(true)),
        (
            "softlayer.ssh_public_key",
            json!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHr0release0test0key operator@example"),
        ),
        ("softlayer.ssh_public_key_fingerprint", json!("aa:bb:cc")),
        ("agent.vcappassword", json!("$6$salt$hash")),
        ("softlayer.enable_vps", json!(false)),
        ("softlayer.swift_username", s["swift_username"].clone()),
        ("softlayer.swift_endpoint", s["swift_endpoint"].clone()),
        ("registry.address", json!("10.9.9.9")),
        (
            "registry.endpoint",
            json!(format!(
                "http://{}:{}@{}:{}",
                reg.username, reg.password, reg.host, reg.port
            )),
        ),
        ("ntp", json!(["time1.google.com"])),
        (
            "blobstore",
            json!({"provider": "s3", "bucket_name": "b", "access_key_id": "a", "secret_access_key": "s",
            "use_ssl": false, "s3_port": 9000, "host": "10.0.0.7", "s3_force_path_style": true}),
        ),
        (
            "agent.blobstore",
            json!({"access_key_id": "agent-a", "secret_access_key": "agent-s"}),
        ),
        ("agent.nats.address", json!("10.0.0.8")),
        ("env.no_proxy", json!("127.0.0.1")),
    ] {
        set(&mut full, k, v);
    }
    let (r, _) = accepted(&SOFTLAYER, &full, ABSENT, "full");
    let p = &r.config()["cloud"]["properties"];
    assert_eq!(
        p["agent"]["blobstore"]["options"]["access_key_id"],
        "agent-a"
    );
    assert_eq!(p["agent"]["blobstore"]["options"]["port"], 9000);
    assert_eq!(p["agent"]["mbus"], "nats://nats:nats-pw@10.0.0.8:4222");
    assert_eq!(
        p["registry"]["address"],
        json!(reg.host),
        "registry.host wins over address"
    );
}

#[test]
fn unsupported_properties_fail_naming_them() {
    let w = world();
    for (key, value, named) in [
        ("softlayer.enable_vps", json!(true), "softlayer.enable_vps"),
        (
            "softlayer.vps_host",
            json!("10.0.0.9"),
            "softlayer.vps_host",
        ),
        ("softlayer.vps_port", json!(4567), "softlayer.vps_port"),
        (
            "softlayer.vps_use_ssl",
            json!(true),
            "softlayer.vps_use_ssl",
        ),
    ] {
        let mut m = minimal(&w);
        set(&mut m, key, value);
        let e = refused(&SOFTLAYER, &m, ABSENT, key);
        assert!(
            e.contains(named) && e.contains("not supported"),
            "{key}: {e}"
        );
    }
}

#[test]
fn wrong_types_and_bad_values_fail_naming_the_property() {
    let w = world();
    let mut m = minimal(&w);
    set(&mut m, "softlayer.username", json!(["not", "a", "string"]));
    let e = refused(&SOFTLAYER, &m, ABSENT, "username list");
    assert!(e.contains("softlayer.username"), "{e}");
    let mut m = minimal(&w);
    set(&mut m, "softlayer.api_endpoint", json!("ftp://api"));
    let e = refused(&SOFTLAYER, &m, ABSENT, "api_endpoint ftp");
    assert!(e.contains("softlayer.api_endpoint"), "{e}");
    let mut m = minimal(&w);
    set(&mut m, "blobstore.agent", json!(null));
    let e = not_rendered(&SOFTLAYER, &m, "no agent blobstore user");
    assert!(e.contains("blobstore.agent.user"), "{e}");
}

#[test]
fn the_proxy_properties_reach_the_cpi() {
    let w = world();
    let proxy = ForwardProxy::start();
    let mut m = minimal(&w);
    through_proxy(&SOFTLAYER, &mut m, &proxy, ABSENT);
}
