//! `elbs` and `lb_target_groups` through the real binary against moto: the
//! VM is registered with each (read back with DescribeInstanceHealth and
//! DescribeTargetHealth), bad names and types are refused naming the key and
//! the name with nothing left, and a registration that fails terminates the
//! VM.

mod common;

use env_aws::proxy::Effect;
use harness::Environment;
use serde_json::{json, Value};

const ELB: &str = "web-elb";
const TARGET_GROUP: &str = "web-tg";

/// A fixture with a classic ELB and a target group made in moto.
fn with_load_balancers() -> Option<common::Fixture> {
    let f = common::fixture()?;
    let seed = f.env.seed().clone();
    let cloud = f.env.inspector();
    cloud.create_classic_elb(ELB, &seed.subnet).unwrap();
    cloud.create_target_group(TARGET_GROUP, &seed.vpc).unwrap();
    Some(f)
}

fn create_args(f: &common::Fixture, stemcell: &str, n: u8, extra: Value) -> Vec<Value> {
    let mut props = f.env.vm_cloud_properties();
    for (k, v) in extra.as_object().unwrap() {
        props[k] = v.clone();
    }
    vec![
        json!("agent-lb"),
        json!(stemcell),
        props,
        json!({"default": f.env.manual_network(n)}),
        json!([]),
        json!({}),
    ]
}

#[test]
fn a_vm_is_registered_with_its_elbs_and_target_groups_through_elb_endpoint() {
    let Some(f) = with_load_balancers() else {
        return;
    };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    f.env.proxy().reset_served();
    let r = f.ok(
        "create_vm",
        create_args(
            &f,
            &stemcell,
            1,
            json!({"elbs": [ELB], "lb_target_groups": [TARGET_GROUP]}),
        ),
    );
    let vm = r[0].as_str().unwrap().to_owned();
    let cloud = f.env.inspector();
    assert_eq!(cloud.elb_instances(ELB), vec![vm.clone()]);
    assert_eq!(cloud.target_group_targets(TARGET_GROUP), vec![vm.clone()]);
    // Through aws.elb_endpoint (the proxy), target groups first, as the
    // incumbent does.
    let actions = f.env.proxy().actions();
    let pos = |a: &str| actions.iter().position(|x| x.ends_with(a));
    let (tg, elb) = (
        pos("elbv2:RegisterTargets").expect("RegisterTargets went through elb_endpoint"),
        pos("elb:RegisterInstancesWithLoadBalancer")
            .expect("RegisterInstancesWithLoadBalancer went through elb_endpoint"),
    );
    assert!(tg < elb, "{actions:?}");

    f.ok("delete_vm", vec![json!(vm)]);
    assert!(
        cloud.target_group_targets(TARGET_GROUP).is_empty(),
        "ELBv2 drops a terminated target"
    );
    common::assert_nothing_left(&before, &f.env.inventory());
    f.ok("delete_stemcell", vec![json!(stemcell)]);
}

#[test]
fn a_lost_register_answer_is_retried_and_the_vm_made_once() {
    let Some(f) = with_load_balancers() else {
        return;
    };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    let proxy = f.env.proxy();
    proxy.on("elbv2:RegisterTargets", Effect::LoseAnswer, 1);
    proxy.on(
        "elb:RegisterInstancesWithLoadBalancer",
        Effect::LoseAnswer,
        1,
    );
    let r = f.ok(
        "create_vm",
        create_args(
            &f,
            &stemcell,
            2,
            json!({"elbs": [ELB], "lb_target_groups": [TARGET_GROUP]}),
        ),
    );
    assert_eq!(proxy.acted().len(), 2, "both answers were lost");
    proxy.clear();
    let vm = r[0].as_str().unwrap().to_owned();
    let cloud = f.env.inspector();
    assert_eq!(cloud.elb_instances(ELB), vec![vm.clone()]);
    assert_eq!(cloud.target_group_targets(TARGET_GROUP), vec![vm.clone()]);
    assert_eq!(f.env.inventory().vms.len(), before.vms.len() + 1);
    f.ok("delete_vm", vec![json!(vm)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn a_missing_elb_or_target_group_is_named_and_nothing_is_made() {
    let Some(f) = with_load_balancers() else {
        return;
    };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    for (key, extra, name) in [
        ("elbs", json!({"elbs": [ELB, "no-such-elb"]}), "no-such-elb"),
        (
            "lb_target_groups",
            json!({"elbs": [ELB], "lb_target_groups": [TARGET_GROUP, "no-such-tg"]}),
            "no-such-tg",
        ),
    ] {
        f.env.proxy().reset_served();
        let e = f.err(
            "create_vm",
            create_args(&f, &stemcell, 3, extra),
            "Bosh::Clouds::VMCreationFailed",
        );
        assert!(
            e.message.contains(&format!("cloud_properties.{key}")) && e.message.contains(name),
            "{key}: {}",
            e.message
        );
        let actions = f.env.proxy().actions();
        assert!(
            !actions.iter().any(|a| a.ends_with("RunInstances")),
            "{key}: nothing launched for a bad name: {actions:?}"
        );
        common::assert_nothing_left(&before, &f.env.inventory());
    }
    assert!(f.env.inspector().elb_instances(ELB).is_empty());
}

#[test]
fn wrong_types_name_the_key() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    for (key, value) in [
        ("elbs", json!("web-elb")),
        ("lb_target_groups", json!([42])),
        ("elbs", json!({"name": "web-elb"})),
    ] {
        let e = f.err(
            "create_vm",
            create_args(&f, &stemcell, 4, json!({key: value})),
            "Bosh::Clouds::CpiError",
        );
        assert!(
            e.message.contains(&format!("cloud_properties.{key}")),
            "{key}: {}",
            e.message
        );
    }
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn a_registration_that_fails_deregisters_and_terminates_the_vm() {
    let Some(f) = with_load_balancers() else {
        return;
    };
    let seed = f.env.seed().clone();
    let cloud = f.env.inspector();
    cloud.create_classic_elb("api-elb", &seed.subnet).unwrap();
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    // The target group and the first ELB take the VM; every attempt at
    // the second ELB fails.
    f.env.proxy().reset_served();
    f.env.proxy().on_nth(
        "elb:RegisterInstancesWithLoadBalancer",
        1,
        Effect::ServerError,
        100,
    );
    let e = f.err(
        "create_vm",
        create_args(
            &f,
            &stemcell,
            5,
            json!({"elbs": [ELB, "api-elb"], "lb_target_groups": [TARGET_GROUP]}),
        ),
        "Bosh::Clouds::VMCreationFailed",
    );
    f.env.proxy().clear();
    assert!(
        e.message.contains("cloud_properties.elbs") && e.message.contains("api-elb"),
        "{}",
        e.message
    );
    common::assert_nothing_left(&before, &f.env.inventory());
    // Read raw: moto's classic ELB would keep a terminated VM registered.
    assert!(
        cloud.elb_instances(ELB).is_empty(),
        "deregistered from {ELB}"
    );
    assert!(cloud.target_group_targets(TARGET_GROUP).is_empty());
    let served = f.env.proxy().actions();
    assert!(
        served
            .iter()
            .any(|a| a.ends_with("elbv2:DeregisterTargets")),
        "{served:?}"
    );
    // The IP is free again: the same create now works.
    let r = f.ok(
        "create_vm",
        create_args(&f, &stemcell, 5, json!({"elbs": [ELB]})),
    );
    f.ok("delete_vm", vec![r[0].clone()]);
}
