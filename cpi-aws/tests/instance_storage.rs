//! `raw_instance_storage: true` through the real binary: the RunInstances
//! EC2 is sent (read at the wire by a recording `http_proxy`, since moto
//! takes no instance-store mappings) maps the type's instance stores under
//! the Ruby CPI's device names, keeps the ephemeral disk on EBS, and tells
//! the agent about them in `disks.raw_ephemeral`; a type without instance
//! storage is refused by name before anything is made.

mod common;

use base64::Engine;
use harness::cpi::Cpi;
use harness::forward_proxy::ForwardProxy;
use harness::Environment;
use serde_json::{json, Value};
use std::time::Duration;

fn args(f: &common::Fixture, stemcell: &str, props: Value) -> Vec<Value> {
    vec![
        json!("agent-raw"),
        json!(stemcell),
        props,
        json!({"default": f.env.manual_network(4)}),
        json!([]),
        json!({}),
    ]
}

#[test]
fn the_instance_stores_are_mapped_and_handed_to_the_agent_raw() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    let proxy = ForwardProxy::start();
    let mut cmd = f.env.cpi();
    cmd.env.push((
        "http_proxy".into(),
        format!("http://127.0.0.1:{}", proxy.port),
    ));
    let cpi = Cpi::new(cmd, Duration::from_secs(300)).unwrap();

    let mut props = f.env.vm_cloud_properties();
    props["instance_type"] = json!("m3.xlarge");
    props["raw_instance_storage"] = json!(true);
    props["ephemeral_disk"] = json!({"size": 8192});
    // moto refuses a mapping without Ebs (MissingParameter): the create
    // fails there, after the request was seen, and must leave nothing.
    let r = cpi.call("create_vm", args(&f, &stemcell, props)).unwrap();
    let run = proxy
        .carried()
        .into_iter()
        .find(|c| c.action().as_deref() == Some("RunInstances"))
        .expect("RunInstances was sent");
    let mappings: Vec<(String, Option<String>, Option<String>)> = (1..=8)
        .filter_map(|n| {
            let p = |k: &str| run.param(&format!("BlockDeviceMapping.{n}.{k}"));
            Some((p("DeviceName")?, p("VirtualName"), p("Ebs.VolumeSize")))
        })
        .collect();
    assert!(
        mappings.contains(&("/dev/xvdba".into(), Some("ephemeral0".into()), None))
            && mappings.contains(&("/dev/xvdbb".into(), Some("ephemeral1".into()), None)),
        "m3.xlarge's two instance stores: {mappings:?}"
    );
    assert!(
        mappings.contains(&("/dev/sdb".into(), None, Some("8".into()))),
        "the ephemeral disk on EBS: {mappings:?}"
    );
    let user_data = base64::engine::general_purpose::STANDARD
        .decode(run.param("UserData").expect("user data"))
        .unwrap();
    let settings: Value = serde_json::from_slice(&user_data).unwrap();
    assert_eq!(
        settings["disks"]["raw_ephemeral"],
        json!([{"path": "/dev/xvdba"}, {"path": "/dev/xvdbb"}]),
        "{settings}"
    );
    assert_eq!(settings["disks"]["ephemeral"], json!("/dev/sdb"));
    if r.error.is_none() {
        f.ok("delete_vm", vec![r.result[0].clone()]);
    }
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn a_type_without_instance_storage_or_with_use_instance_storage_is_refused() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    for (itype, eph, needle) in [
        (
            "t3.micro",
            json!(null),
            "'t3.micro' that does not have instance storage",
        ),
        (
            "m3.large",
            json!({"use_instance_storage": true}),
            "use_instance_storage",
        ),
    ] {
        let mut props = f.env.vm_cloud_properties();
        props["instance_type"] = json!(itype);
        props["raw_instance_storage"] = json!(true);
        props["ephemeral_disk"] = eph;
        let e = f.err(
            "create_vm",
            args(&f, &stemcell, props),
            "Bosh::Clouds::CpiError",
        );
        assert!(
            e.message.contains("cloud_properties.") && e.message.contains(needle),
            "{itype}: {}",
            e.message
        );
    }
    let mut props = f.env.vm_cloud_properties();
    props["raw_instance_storage"] = json!("yes");
    let e = f.err(
        "create_vm",
        args(&f, &stemcell, props),
        "Bosh::Clouds::CpiError",
    );
    assert!(
        e.message.contains("cloud_properties.raw_instance_storage"),
        "{}",
        e.message
    );
    common::assert_nothing_left(&before, &f.env.inventory());
}
