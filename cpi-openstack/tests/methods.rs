//! Every CPI method through the real binary against the fake OpenStack,
//! checked in the cloud itself.

mod common;
use common::*;
use serde_json::{json, Value};

#[test]
fn info_answers_from_config_alone() {
    let w = world_with(|p| p["openstack"]["auth_url"] = json!("http://127.0.0.1:9/identity/v3"));
    let info = w.ok("info", vec![]);
    assert_eq!(
        info,
        json!({"api_version": 2, "stemcell_formats": ["openstack-raw", "openstack-qcow2", "openstack-light"]})
    );
    assert!(w.fake.calls().is_empty());
}

#[test]
fn stemcells_heavy_streams_root_img_and_light_points_at_the_image() {
    let w = world();
    let heavy = w.heavy_stemcell();
    let images = w.fake.images();
    assert_eq!(images.len(), 1);
    let img = &images[0];
    assert_eq!(img["id"], heavy.as_str());
    assert_eq!(img["status"], "active");
    assert_eq!(img["name"], "bosh-openstack-kvm-ubuntu/1.5");
    assert_eq!(img["disk_format"], "qcow2");
    assert_eq!(img["visibility"], "private");
    assert_eq!(
        img["auto_disk_config"], "true",
        "properties go to Glance as strings"
    );
    assert_eq!(img["hypervisor_type"], "kvm");
    assert_eq!(w.fake.image_bytes(&heavy), Some(3 << 20));

    let light = w.light_stemcell();
    assert_eq!(light, format!("{} light", fake_openstack::LIGHT_IMAGE_ID));
    w.ok("delete_stemcell", vec![json!(light)]);
    w.ok("delete_stemcell", vec![json!(heavy)]);
    assert!(w.fake.images().is_empty());
    w.ok("delete_stemcell", vec![json!(heavy)]);
}

#[test]
fn a_corrupt_image_is_refused_before_anything_is_made() {
    let w = world();
    let path = w.dir.path().join("corrupt");
    std::fs::write(&path, b"not a tarball").unwrap();
    let e = w.err(
        "create_stemcell",
        vec![json!(path), json!({"name": "x", "version": "1"})],
    );
    assert_eq!(e.kind, "Bosh::Clouds::CpiError");
    assert!(e.message.contains("root.img"), "{}", e.message);
    assert!(w.fake.images().is_empty());
}

#[test]
fn vm_lifecycle_with_user_data_and_no_config_drive() {
    let w = world();
    let stemcell = w.light_stemcell();
    let networks = json!({"default": World::manual("10.0.0.20"), "public": {"type": "vip", "ip": fake_openstack::FLOATING_IP, "cloud_properties": {}}});
    let reply = w.cpi.call("create_vm", vec![json!("agent-7"), json!(stemcell),
        json!({"instance_type": "m1.small", "scheduler_hints": {"group": "g-1"}, "availability_zone": "z1"}),
        networks, json!([]), json!({"bosh": {"password": "env-pw-hash"}})]).unwrap();
    assert!(reply.error.is_none(), "{:?} {}", reply.error, reply.stderr);
    let vm = reply.result[0].as_str().unwrap().to_owned();
    let mac = reply.result[1]["default"]["mac"]
        .as_str()
        .expect("mac in the v2 answer")
        .to_owned();

    let server = w.fake.server(&vm).unwrap();
    assert_eq!(server["status"], "ACTIVE");
    assert_eq!(server["config_drive"], "", "no config drive unless asked");
    assert_eq!(server["key_name"], "bosh");
    assert_eq!(server["OS-EXT-AZ:availability_zone"], "z1");
    assert_eq!(server["fake:scheduler_hints"], json!({"group": "g-1"}));
    assert_eq!(server["security_groups"], json!([{"name": "default"}]));

    let settings: Value = serde_json::from_str(&w.fake.user_data(&vm).expect("user data")).unwrap();
    assert_eq!(settings["agent_id"], "agent-7");
    assert_eq!(settings["vm"]["name"], server["name"]);
    assert_eq!(settings["networks"]["default"]["ip"], "10.0.0.20");
    assert_eq!(settings["networks"]["default"]["mac"], mac.as_str());
    assert_eq!(settings["networks"]["default"]["use_dhcp"], true);
    assert_eq!(settings["disks"]["system"], "/dev/sda");
    assert_eq!(settings["disks"]["ephemeral"], "/dev/sdb");
    assert_eq!(settings["env"]["bosh"]["password"], "env-pw-hash");
    assert_eq!(settings["ntp"], json!(["0.pool.ntp.org"]));
    assert!(settings["mbus"]
        .as_str()
        .unwrap()
        .starts_with("https://mbus:"));
    assert!(settings.get("registry").is_none());

    let ports: Vec<Value> = w
        .fake
        .ports()
        .into_iter()
        .filter(|p| p["device_id"] == vm.as_str())
        .collect();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["fixed_ips"][0]["ip_address"], "10.0.0.20");
    assert_eq!(ports[0]["security_groups"], json!(["sg-default"]));
    let fip = &w.fake.floating_ips()[0];
    assert_eq!(fip["port_id"], ports[0]["id"]);

    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(true));
    w.ok(
        "set_vm_metadata",
        vec![
            json!(vm),
            json!({"job": "web", "index": "0", "director": "d"}),
        ],
    );
    assert_eq!(w.fake.server(&vm).unwrap()["metadata"]["job"], "web");
    w.ok("reboot_vm", vec![json!(vm)]);
    assert_eq!(
        w.count_calls(&format!("POST /compute/v2.1/servers/{vm}/action")),
        1,
        "a soft reboot was enough"
    );

    w.ok("delete_vm", vec![json!(vm)]);
    assert!(w.fake.servers().is_empty());
    assert!(
        w.fake.ports().is_empty(),
        "ports left: {:?}",
        w.fake.ports()
    );
    assert!(w.fake.floating_ips()[0]["port_id"].is_null());
    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(false));
    w.ok("delete_vm", vec![json!(vm)]);
}

#[test]
fn config_drive_is_requested_only_when_set() {
    let w = world_with(|p| p["openstack"]["config_drive"] = json!("cdrom"));
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.21")}),
        )
        .unwrap();
    assert_eq!(w.fake.server(&vm).unwrap()["config_drive"], "True");
    assert!(
        w.fake.user_data(&vm).is_some(),
        "settings still travel as user data"
    );
}

#[test]
fn stemcell_api_v1_uses_the_registry() {
    let w = world();
    let cpi = w.cpi.with_versions(2, 1);
    let stemcell = w.light_stemcell();
    let reply = cpi
        .call(
            "create_vm",
            vec![
                json!("agent-v1"),
                json!(stemcell),
                json!({"instance_type": "m1.small"}),
                json!({"default": World::manual("10.0.0.22")}),
                json!([]),
                json!({}),
            ],
        )
        .unwrap();
    assert!(reply.error.is_none(), "{:?}", reply.error);
    let vm = reply.result[0].as_str().unwrap().to_owned();
    let name = w.fake.server(&vm).unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_data: Value = serde_json::from_str(&w.fake.user_data(&vm).unwrap()).unwrap();
    assert!(user_data["registry"]["endpoint"]
        .as_str()
        .unwrap()
        .contains(&w.registry.endpoint().url[7..]));
    assert!(
        user_data.get("agent_id").is_none(),
        "v1 user data only points at the registry"
    );
    let settings = w
        .registry
        .settings(&name)
        .expect("settings in the registry")
        .unwrap();
    assert_eq!(settings["agent_id"], "agent-v1");

    let disk = w.ok("create_disk", vec![json!(2048), json!({}), json!(vm)]);
    cpi.call("attach_disk", vec![json!(vm), disk.clone()])
        .unwrap();
    let settings = w.registry.settings(&name).unwrap().unwrap();
    assert!(
        settings["disks"]["persistent"][disk.as_str().unwrap()].is_string(),
        "{settings}"
    );
}

#[test]
fn registry_without_credentials_is_a_config_error() {
    let w = world_with(|p| p["registry"] = json!({"endpoint": "http://127.0.0.1:25777"}));
    let e = w
        .cpi
        .with_versions(2, 1)
        .call(
            "create_vm",
            vec![
                json!("a"),
                json!("x light"),
                json!({"instance_type": "m1.small"}),
                json!({"default": World::manual("10.0.0.23")}),
                json!([]),
                json!({}),
            ],
        )
        .unwrap()
        .error
        .unwrap();
    assert_eq!(e.kind, "Bosh::Clouds::CpiError");
    assert!(e.message.contains("registry.user"), "{}", e.message);
    assert!(w.fake.servers().is_empty());
}

#[test]
fn disks_and_snapshots() {
    let w = world();
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small", "availability_zone": "z2"}),
            json!({"default": World::manual("10.0.0.24")}),
        )
        .unwrap();

    let disk = w.ok(
        "create_disk",
        vec![json!(2500), json!({"type": "ssd"}), json!(vm)],
    );
    let d = disk.as_str().unwrap();
    let vol = w.fake.volume(d).unwrap();
    assert_eq!(
        (
            vol["size"].as_u64(),
            vol["availability_zone"].as_str(),
            vol["volume_type"].as_str()
        ),
        (Some(3), Some("z2"), Some("ssd"))
    );
    assert_eq!(w.ok("has_disk", vec![disk.clone()]), json!(true));
    assert_eq!(w.ok("get_disks", vec![json!(vm)]), json!([]));

    let hint = w.ok("attach_disk", vec![json!(vm), disk.clone()]);
    assert_eq!(hint, json!("/dev/sdc"), "after the flavor's ephemeral disk");
    assert_eq!(w.fake.volume(d).unwrap()["status"], "in-use");
    assert_eq!(w.ok("get_disks", vec![json!(vm)]), json!([d]));
    assert_eq!(
        w.ok("attach_disk", vec![json!(vm), disk.clone()]),
        hint,
        "attaching twice answers the same device"
    );

    w.ok(
        "set_disk_metadata",
        vec![disk.clone(), json!({"director": "d", "deployment": "dep"})],
    );
    assert_eq!(w.fake.volume(d).unwrap()["metadata"]["deployment"], "dep");

    let e = w.err("delete_disk", vec![disk.clone()]);
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");

    let snap = w.ok(
        "snapshot_disk",
        vec![
            disk.clone(),
            json!({"deployment": "dep", "job": "web", "index": "0"}),
        ],
    );
    let snaps = w.fake.snapshots();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["id"], snap);
    assert_eq!(snaps[0]["status"], "available");
    assert_eq!(snaps[0]["description"], "dep/web/0");
    assert_eq!(snaps[0]["metadata"]["job"], "web");
    w.ok("delete_snapshot", vec![snap.clone()]);
    assert!(w.fake.snapshots().is_empty());
    w.ok("delete_snapshot", vec![snap]);

    w.ok("detach_disk", vec![json!(vm), disk.clone()]);
    assert_eq!(w.fake.volume(d).unwrap()["status"], "available");
    let e = w.err("detach_disk", vec![json!(vm), disk.clone()]);
    assert_eq!(e.kind, "Bosh::Clouds::DiskNotAttached");

    w.ok("resize_disk", vec![disk.clone(), json!(5 * 1024)]);
    assert_eq!(w.fake.volume(d).unwrap()["size"], 5);
    w.ok("resize_disk", vec![disk.clone(), json!(5 * 1024)]);
    let e = w.err("resize_disk", vec![disk.clone(), json!(1024)]);
    assert_eq!(e.kind, "Bosh::Clouds::NotSupported");

    w.ok("delete_disk", vec![disk.clone()]);
    assert!(w.fake.volumes().is_empty());
    assert_eq!(w.ok("has_disk", vec![disk.clone()]), json!(false));
    w.ok("delete_vm", vec![json!(vm)]);
}

#[test]
fn bad_instance_type_is_named_and_leaves_nothing() {
    let w = world();
    let stemcell = w.light_stemcell();
    let e = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "no-such"}),
            json!({"default": World::manual("10.0.0.25")}),
        )
        .unwrap_err();
    assert!(e.message.contains("instance_type"), "{}", e.message);
    assert!(w.fake.servers().is_empty() && w.fake.ports().is_empty());
}

#[test]
fn application_credentials_authenticate() {
    let w = world_with(|p| {
        let o = p["openstack"].as_object_mut().unwrap();
        o.remove("username");
        o.remove("api_key");
        o.insert("application_credential_id".into(), json!("app-cred-1"));
        o.insert(
            "application_credential_secret".into(),
            json!(format!("{PASSWORD}-app")),
        );
    });
    assert_eq!(
        w.ok(
            "has_vm",
            vec![json!("00000000-0000-0000-0000-000000000000")]
        ),
        json!(false)
    );
}

#[test]
fn wrong_password_is_a_cloud_error_naming_keystone() {
    let w = world_with(|p| p["openstack"]["api_key"] = json!("wrong-password-123"));
    let e = w.err("has_vm", vec![json!("x")]);
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(e.message.contains("Keystone"), "{}", e.message);
    assert!(
        e.message.contains("requires authentication"),
        "{}",
        e.message
    );
}

#[test]
fn older_job_config_shapes_are_accepted() {
    // The older Ruby job renders the registry with `address` and `http`, and
    // the Go job renders `connection_options` as a string.
    let w = world_with(|p| {
        p["registry"] = json!({"user": null, "password": null, "address": "127.0.0.1",
            "http": {"port": 25777, "user": null, "password": null}, "endpoint": "http://127.0.0.1:25777"});
        p["openstack"]["connection_options"] = json!("{\"ssl_verify_peer\": false}");
        p["openstack"]["enable_auto_anti_affinity"] = json!(false);
        p["openstack"]["some_future_key"] = json!(1);
    });
    let reply = w
        .cpi
        .call(
            "has_vm",
            vec![json!("00000000-0000-0000-0000-000000000000")],
        )
        .unwrap();
    assert!(reply.error.is_none(), "{:?}", reply.error);
    assert_eq!(reply.result, json!(false));
    assert!(
        reply.stderr.contains("some_future_key"),
        "unknown keys are warned: {}",
        reply.stderr
    );
}

#[test]
fn delete_vm_of_a_vanished_server_removes_the_ports_made_for_it() {
    let w = world();
    let stemcell = w.light_stemcell();
    let vm = w
        .create_vm(
            &stemcell,
            json!({"instance_type": "m1.small"}),
            json!({"default": World::manual("10.0.0.26")}),
        )
        .unwrap();
    w.fake.destroy_server(&vm);
    assert_eq!(
        w.fake.ports().len(),
        1,
        "Nova leaves a port it did not make"
    );
    assert_eq!(w.ok("has_vm", vec![json!(vm)]), json!(false));
    w.ok("delete_vm", vec![json!(vm)]);
    assert!(w.fake.ports().is_empty(), "{:?}", w.fake.ports());
}

#[test]
fn project_id_scope_without_a_domain() {
    let w = world_with(|p| {
        let o = p["openstack"].as_object_mut().unwrap();
        o.remove("domain");
        o.remove("project");
        o.insert("project_id".into(), json!(fake_openstack::PROJECT_ID));
    });
    assert_eq!(
        w.ok(
            "has_disk",
            vec![json!("00000000-0000-0000-0000-000000000000")]
        ),
        json!(false)
    );
}

#[test]
fn a_bad_ca_certificate_is_a_config_error_before_any_request() {
    let w = world();
    let ca = w.dir.path().join("cacert.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = w.err("has_vm", vec![json!("x")]);
    assert_eq!(e.kind, "Bosh::Clouds::CpiError", "{}", e.message);
    assert!(w.fake.calls().is_empty(), "{:?}", w.fake.calls());
}

#[test]
fn without_a_system_ca_store_http_works_and_https_names_the_missing_store() {
    let w = world();
    // rustls-native-certs reads only these when they are set.
    let empty = w.dir.path().join("no-certs");
    std::fs::create_dir(&empty).unwrap();
    let no_store = |cpi: &harness::cpi::Cpi| {
        cpi.with_env("SSL_CERT_DIR", &empty.display().to_string())
            .with_env(
                "SSL_CERT_FILE",
                &empty.join("none.pem").display().to_string(),
            )
    };
    // An http endpoint needs no trust roots.
    let reply = no_store(&w.cpi)
        .call(
            "has_disk",
            vec![json!("00000000-0000-0000-0000-000000000000")],
        )
        .unwrap();
    assert!(reply.error.is_none(), "{:?} {}", reply.error, reply.stderr);
    assert_eq!(reply.result, json!(false));

    // An https one does, and the error says they are missing.
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.dir.path().join("cpi.json")).unwrap())
            .unwrap();
    config["cloud"]["properties"]["openstack"]["auth_url"] =
        json!("https://127.0.0.1:9/identity/v3");
    let https = w.dir.path().join("cpi-https.json");
    std::fs::write(&https, config.to_string()).unwrap();
    let cpi = no_store(&w.cpi).with_args(vec![
        https.display().to_string(),
        w.dir.path().join("cacert.pem").display().to_string(),
    ]);
    let e = cpi
        .call(
            "has_disk",
            vec![json!("00000000-0000-0000-0000-000000000000")],
        )
        .unwrap()
        .error
        .expect("an https endpoint without trust roots fails");
    assert!(e.message.contains("no CA certificates"), "{}", e.message);
    assert!(e.message.contains("https"), "{}", e.message);
}
