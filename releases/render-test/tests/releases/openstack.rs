//! bosh-openstack-cpi's openstack_cpi job against the fake OpenStack.

use crate::common::{accepted, bypassing_proxy, not_rendered, refused, through_proxy, World};
use harness::forward_proxy::ForwardProxy;
use release_render::{set, some_ca_pem, unset, OPENSTACK};
use serde_json::{json, Value};

const ABSENT: &str = "00000000-0000-4000-8000-000000000000";

fn world() -> World {
    World::start(&OPENSTACK, fake_openstack::start_environment)
}

/// Only what the job and Keystone v3 need.
fn minimal(w: &World) -> Value {
    let o = &w.config()["cloud"]["properties"]["openstack"];
    json!({"properties": {"openstack": {
        "auth_url": o["auth_url"], "username": o["username"], "api_key": o["api_key"],
        "domain": o["domain"], "project": o["project"],
        "default_key_name": o["default_key_name"], "default_security_groups": o["default_security_groups"],
    }}})
}

/// bosh-deployment's openstack/cpi.yml cloud_provider properties, and
/// bosh.yml's agent.mbus.
fn documented(w: &World) -> Value {
    let o = &w.config()["cloud"]["properties"]["openstack"];
    let mut m = minimal(w);
    set(&mut m, "openstack.region", o["region"].clone());
    set(&mut m, "openstack.human_readable_vm_names", json!(true));
    set(
        &mut m,
        "agent.mbus",
        json!("https://mbus:mbus-pw@0.0.0.0:6868"),
    );
    m
}

#[test]
fn minimal_documented_and_full_manifests_are_accepted() {
    let w = world();
    let (r, _) = accepted(&OPENSTACK, &minimal(&w), ABSENT, "minimal");
    let bin = r.file("bin/cpi");
    assert!(bin.contains("openstack_cpi/config/cpi.json\" \\\n  \"$BOSH_JOBS_DIR/openstack_cpi/config/cacert.pem\""), "{bin}");
    assert_eq!(
        r.file("config/cacert.pem"),
        "",
        "no CA: an empty file, as the incumbent"
    );

    let (r, _) = accepted(&OPENSTACK, &documented(&w), ABSENT, "documented");
    assert_eq!(
        r.config()["cloud"]["properties"]["agent"]["mbus"],
        "https://mbus:mbus-pw@0.0.0.0:6868"
    );

    let reg = w.registry.endpoint();
    let mut full = documented(&w);
    let pem = some_ca_pem();
    for (k, v) in [
        ("openstack.endpoint_type", json!("publicURL")),
        ("openstack.state_timeout", json!(120)),
        ("openstack.boot_from_volume", json!(true)),
        ("openstack.stemcell_public_visibility", json!(true)),
        (
            "openstack.connection_options",
            json!({"ca_cert": pem, "read_timeout": 30}),
        ),
        ("openstack.default_volume_type", json!("SSD")),
        ("openstack.wait_resource_poll_interval", json!(1)),
        ("openstack.config_drive", json!("cdrom")),
        ("openstack.use_dhcp", json!(false)),
        ("openstack.ignore_server_availability_zone", json!(true)),
        ("openstack.user_domain_name", json!("Default")),
        ("openstack.project_domain_name", json!("Default")),
        ("registry.host", json!(reg.host)),
        ("registry.port", json!(reg.port)),
        ("registry.username", json!(reg.username)),
        ("registry.password", json!(reg.password)),
        (
            "registry.endpoint",
            json!(format!(
                "http://{}:{}@{}:{}",
                reg.username, reg.password, reg.host, reg.port
            )),
        ),
        ("ntp", json!(["0.us.pool.ntp.org"])),
        ("env.no_proxy", json!("127.0.0.1,localhost")),
    ] {
        set(&mut full, k, v);
    }
    let (r, _) = accepted(&OPENSTACK, &full, ABSENT, "full");
    assert_eq!(r.file("config/cacert.pem"), pem);
    let p = &r.config()["cloud"]["properties"];
    assert_eq!(p["openstack"]["config_drive"], "cdrom");
    assert_eq!(p["registry"]["address"], json!(reg.host));

    // Application credentials instead of user and password.
    let mut app = minimal(&w);
    unset(&mut app, "openstack.username");
    unset(&mut app, "openstack.api_key");
    set(
        &mut app,
        "openstack.application_credential_id",
        json!("app-id"),
    );
    let e = refused(&OPENSTACK, &app, ABSENT, "credential id without secret");
    assert!(e.contains("openstack.application_credential_secret"), "{e}");
}

#[test]
fn unsupported_properties_fail_naming_them() {
    let w = world();
    let mut m = minimal(&w);
    set(&mut m, "openstack.use_nova_networking", json!(true));
    let e = refused(&OPENSTACK, &m, ABSENT, "use_nova_networking");
    assert!(e.contains("openstack.use_nova_networking"), "{e}");
    let mut m = minimal(&w);
    set(&mut m, "openstack.enable_auto_anti_affinity", json!(true));
    let e = not_rendered(&OPENSTACK, &m, "enable_auto_anti_affinity");
    assert!(e.contains("openstack.enable_auto_anti_affinity"), "{e}");
    // As in the incumbent: human-readable names with a registry need its endpoint.
    let mut m = documented(&w);
    set(&mut m, "registry.host", json!("10.0.0.5"));
    set(&mut m, "registry.username", json!("u"));
    set(&mut m, "registry.password", json!("p"));
    let e = not_rendered(
        &OPENSTACK,
        &m,
        "human_readable_vm_names without registry.endpoint",
    );
    assert!(e.contains("registry.endpoint"), "{e}");
}

#[test]
fn wrong_types_fail_naming_the_property() {
    let w = world();
    for (key, value, named) in [
        ("openstack.state_timeout", json!("long"), "state_timeout"),
        (
            "openstack.default_security_groups",
            json!("default"),
            "default_security_groups",
        ),
        (
            "openstack.auth_url",
            json!("not a url"),
            "openstack.auth_url",
        ),
        (
            "openstack.config_drive",
            json!("floppy"),
            "openstack.config_drive",
        ),
    ] {
        let mut m = minimal(&w);
        set(&mut m, key, value);
        let e = refused(&OPENSTACK, &m, ABSENT, key);
        assert!(e.contains(named), "{key}: {e}");
    }
}

#[test]
fn the_proxy_properties_reach_the_cpi() {
    let w = world();
    let proxy = ForwardProxy::start();
    let mut m = minimal(&w);
    let (r, _) = through_proxy(&OPENSTACK, &mut m, &proxy, ABSENT);
    assert!(r.file("bin/cpi").contains("export http_proxy="));
    bypassing_proxy(&OPENSTACK, &mut m, &proxy, ABSENT);
}
