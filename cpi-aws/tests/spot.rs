//! Spot VMs (`spot_bid_price`, `spot_ondemand_fallback`) through the real
//! binary against moto: launched on the spot market, refused spot requests
//! failing or falling back to on-demand, and nothing left behind either way.

mod common;

use env_aws::proxy::Effect;
use harness::Environment;
use serde_json::{json, Value};

/// Requests per failed request in env-aws's config (`max_retries` 3).
const ATTEMPTS: u32 = 4;

fn args(f: &common::Fixture, stemcell: &str, props: Value, n: u8) -> Vec<Value> {
    vec![
        json!("agent-spot"),
        json!(stemcell),
        props,
        json!({"default": f.env.manual_network(n)}),
        json!([]),
        json!({}),
    ]
}

/// The instance's lifecycle (`spot`, or None when on demand) and its
/// MaxPrice-bearing spot request, as EC2 reports them.
fn lifecycle(f: &common::Fixture, vm: &str) -> Option<String> {
    let i = f.env.inspector();
    i.block_on(async {
        let out = i
            .client()
            .describe_instances()
            .instance_ids(vm)
            .send()
            .await
            .expect("DescribeInstances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .and_then(|i| i.instance_lifecycle())
            .map(|l| l.as_str().to_owned())
    })
}

/// RunInstances requests moto answered (faulted ones are in `acted()`).
fn run_instances(f: &common::Fixture) -> usize {
    f.env
        .proxy()
        .actions()
        .iter()
        .filter(|a| a.trim_start_matches("ec2:") == "RunInstances")
        .count()
}

#[test]
fn a_spot_bid_launches_a_spot_instance_and_a_lost_answer_makes_only_one() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    let mut props = f.env.vm_cloud_properties();
    props["spot_bid_price"] = json!(0.05);
    let r = f.ok("create_vm", args(&f, &stemcell, props.clone(), 1));
    let vm = r[0].as_str().unwrap().to_owned();
    assert_eq!(lifecycle(&f, &vm).as_deref(), Some("spot"));
    f.ok("delete_vm", vec![json!(vm)]);
    common::assert_nothing_left(&before, &f.env.inventory());

    // moto launches, the answer is lost: the re-send finds it by its
    // token, and no second (spot or on-demand) instance is made.
    props["spot_bid_price"] = json!("0.07");
    props["spot_ondemand_fallback"] = json!(true);
    f.env.proxy().on("RunInstances", Effect::LoseAnswer, 1);
    let r = f.ok("create_vm", args(&f, &stemcell, props, 2));
    assert_eq!(f.env.proxy().acted().len(), 1, "the answer was lost once");
    f.env.proxy().clear();
    let vm = r[0].as_str().unwrap().to_owned();
    assert_eq!(lifecycle(&f, &vm).as_deref(), Some("spot"));
    let after = f.env.inventory();
    assert_eq!(
        after.vms.len(),
        before.vms.len() + 1,
        "one instance: {:?}",
        after.vms
    );
    f.ok("delete_vm", vec![json!(vm)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn a_refused_spot_request_fails_without_fallback_and_goes_on_demand_with_it() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    let mut props = f.env.vm_cloud_properties();
    props["spot_bid_price"] = json!(0.01);

    // EC2 refuses the spot launch through all its retries.
    f.env.proxy().reset_served();
    f.env
        .proxy()
        .on("RunInstances", Effect::ServerError, ATTEMPTS);
    let e = f.err(
        "create_vm",
        args(&f, &stemcell, props.clone(), 1),
        "Bosh::Clouds::VMCreationFailed",
    );
    assert!(!e.ok_to_retry, "as the Ruby CPI: {}", e.message);
    assert!(
        e.message.contains("spot instance creation failed") && e.message.contains("spot_bid_price"),
        "{}",
        e.message
    );
    assert_eq!(f.env.proxy().acted().len(), ATTEMPTS as usize);
    assert_eq!(
        run_instances(&f),
        0,
        "no on-demand launch without spot_ondemand_fallback"
    );
    f.env.proxy().clear();
    // No instance, no ENI, no open spot request.
    common::assert_nothing_left(&before, &f.env.inventory());

    props["spot_ondemand_fallback"] = json!(true);
    f.env.proxy().reset_served();
    f.env
        .proxy()
        .on("RunInstances", Effect::ServerError, ATTEMPTS);
    let r = f.ok("create_vm", args(&f, &stemcell, props, 2));
    assert_eq!(f.env.proxy().acted().len(), ATTEMPTS as usize);
    assert_eq!(run_instances(&f), 1, "then one on-demand launch");
    f.env.proxy().clear();
    let vm = r[0].as_str().unwrap().to_owned();
    assert!(f.env.vm_exists(&vm));
    assert_eq!(lifecycle(&f, &vm), None, "an on-demand instance");
    f.ok("delete_vm", vec![json!(vm)]);
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn a_spot_vm_failing_after_its_launch_is_removed_with_its_request() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    let mut props = f.env.vm_cloud_properties();
    props["spot_bid_price"] = json!(0.05);
    // The wait for the instance to run fails.
    f.env.proxy().after(
        "RunInstances",
        "DescribeInstances",
        Effect::ServerError,
        ATTEMPTS,
    );
    f.err(
        "create_vm",
        args(&f, &stemcell, props, 1),
        "Bosh::Clouds::VMCreationFailed",
    );
    f.env.proxy().clear();
    common::assert_nothing_left(&before, &f.env.inventory());
}

#[test]
fn bad_spot_values_are_refused_by_key_before_anything_is_made() {
    let Some(f) = common::fixture() else { return };
    let stemcell = f.light_stemcell();
    let before = f.env.inventory();
    for (key, value) in [
        ("spot_bid_price", json!("cheap")),
        ("spot_bid_price", json!(true)),
        ("spot_bid_price", json!(-0.5)),
        ("spot_ondemand_fallback", json!("yes")),
    ] {
        let mut props = f.env.vm_cloud_properties();
        props["spot_bid_price"] = json!(0.05);
        props[key] = value.clone();
        let e = f.err(
            "create_vm",
            args(&f, &stemcell, props, 3),
            "Bosh::Clouds::CpiError",
        );
        assert!(
            e.message.contains(&format!("cloud_properties.{key}")),
            "{key} {value}: {}",
            e.message
        );
    }
    common::assert_nothing_left(&before, &f.env.inventory());
}
