//! bosh-aws-cpi's aws_cpi job against moto (EC2), through env-aws.

use crate::common::{accepted, bypassing_proxy, not_rendered, refused, through_proxy, World};
use harness::forward_proxy::ForwardProxy;
use release_render::{set, some_ca_pem, AWS};
use serde_json::{json, Value};

const ABSENT: &str = "i-0123456789abcdef0";

fn world() -> World {
    World::start(&AWS, env_aws::start_environment)
}

/// What the job requires, and moto's endpoint (ec2_endpoint is a job
/// property: the Ruby CPI's way to point at another EC2).
fn minimal(w: &World) -> Value {
    let a = &w.config()["cloud"]["properties"]["aws"];
    json!({"properties": {"aws": {
        "access_key_id": a["access_key_id"], "secret_access_key": a["secret_access_key"],
        "default_security_groups": a["default_security_groups"], "region": a["region"],
        "ec2_endpoint": a["ec2_endpoint"],
    }}})
}

/// bosh-deployment's aws/cpi.yml cloud_provider properties and bosh.yml's
/// agent.mbus.
fn documented(w: &World) -> Value {
    let a = &w.config()["cloud"]["properties"]["aws"];
    let mut m = minimal(w);
    set(
        &mut m,
        "aws.default_key_name",
        a["default_key_name"].clone(),
    );
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
    let (r, info) = accepted(&AWS, &minimal(&w), ABSENT, "minimal");
    assert_eq!(
        info["api_version"], 3,
        "debug.cpi.api_version renders as 3 when unset"
    );
    let bin = r.file("bin/cpi");
    assert!(
        bin.contains("bin/cpi\" \"$BOSH_JOBS_DIR/aws_cpi/config/cpi.json\""),
        "{bin}"
    );
    assert!(!bin.contains("export BOSH_CA_CERT_FILE"));
    let aws = &r.config()["cloud"]["properties"]["aws"];
    assert_eq!(aws["max_retries"], 8);
    assert_eq!(
        aws["session_token"],
        Value::Null,
        "nulls rendered as the incumbent does"
    );

    let (r, _) = accepted(&AWS, &documented(&w), ABSENT, "documented");
    assert_eq!(
        r.config()["cloud"]["properties"]["agent"]["mbus"],
        "https://mbus:mbus-pw@0.0.0.0:6868"
    );

    let reg = w.registry.endpoint();
    let pem = some_ca_pem();
    let mut full = documented(&w);
    for (k, v) in [
        ("debug.cpi.api_version", json!(2)),
        ("aws.credentials_source", json!("static")),
        ("aws.session_token", json!("session-token-1")),
        ("aws.default_iam_instance_profile", json!("bosh-profile")),
        ("aws.max_retries", json!(2)),
        ("aws.dualstack", json!(false)),
        ("aws.connection_options.ca_cert", json!(pem)),
        ("aws.encrypted", json!(true)),
        (
            "aws.kms_key_arn",
            json!("arn:aws:kms:us-east-1:123456789012:key/e1c1f008-779b-4ebe-8116-0a34b77747dd"),
        ),
        (
            "aws.metadata_options",
            json!({"http_tokens": "required", "http_put_response_hop_limit": 2}),
        ),
        ("aws.enable_describe_instance_types", json!(false)),
        ("registry.username", json!(reg.username)),
        ("registry.password", json!(reg.password)),
        ("registry.host", json!(reg.host)),
        ("registry.port", json!(reg.port)),
        ("ntp", json!(["time1.google.com"])),
        ("env.no_proxy", json!("127.0.0.1")),
    ] {
        set(&mut full, k, v);
    }
    let (r, info) = accepted(&AWS, &full, ABSENT, "full");
    assert_eq!(info["api_version"], 2, "debug.cpi.api_version reached info");
    assert!(r
        .file("bin/cpi")
        .contains("export BOSH_CA_CERT_FILE=\"$BOSH_JOBS_DIR/aws_cpi/config/cacert.pem\""));
    assert_eq!(r.file("config/cacert.pem"), format!("{pem}\n"));
    let p = &r.config()["cloud"]["properties"];
    assert_eq!(
        p["registry"]["endpoint"],
        json!(format!(
            "http://{}:{}@{}:{}",
            reg.username, reg.password, reg.host, reg.port
        ))
    );

    // NATS instead of agent.mbus.
    let mut nats = minimal(&w);
    set(
        &mut nats,
        "nats",
        json!({"password": "np", "address": "10.0.0.6"}),
    );
    let (r, _) = accepted(&AWS, &nats, ABSENT, "nats");
    assert_eq!(
        r.config()["cloud"]["properties"]["agent"]["mbus"],
        "nats://nats:np@10.0.0.6:4222"
    );
}

#[test]
fn elb_endpoint_reaches_the_cpi_and_is_accepted() {
    let w = world();
    let mut m = minimal(&w);
    set(
        &mut m,
        "aws.elb_endpoint",
        json!("elasticloadbalancing.us-east-1.amazonaws.com"),
    );
    // Accepted: the ELB clients are made only for VMs with load balancers.
    let (r, _) = accepted(&AWS, &m, ABSENT, "elb_endpoint");
    assert_eq!(
        r.config()["cloud"]["properties"]["aws"]["elb_endpoint"],
        "elasticloadbalancing.us-east-1.amazonaws.com"
    );
    set(&mut m, "aws.elb_endpoint", json!("not an endpoint"));
    let e = refused(&AWS, &m, ABSENT, "bad elb_endpoint");
    assert!(e.contains("aws.elb_endpoint"), "{e}");
}

#[test]
fn unsupported_properties_fail_naming_them() {
    let w = world();
    let mut m = minimal(&w);
    set(&mut m, "aws.stemcell.kernel_id", json!("aki-919dcaf8"));
    let e = refused(&AWS, &m, ABSENT, "kernel_id");
    assert!(
        e.contains("aws.stemcell.kernel_id") && e.contains("not supported"),
        "{e}"
    );
}

#[test]
fn wrong_types_and_bad_values_fail_naming_the_property() {
    let w = world();
    for (key, value, named) in [
        ("aws.max_retries", json!("eight"), "max_retries"),
        ("aws.encrypted", json!("yes"), "encrypted"),
        (
            "aws.credentials_source",
            json!("vault"),
            "credentials_source",
        ),
        (
            "aws.default_security_groups",
            json!("bosh"),
            "default_security_groups",
        ),
        ("aws.region", json!("mars"), "aws.region"),
    ] {
        let mut m = minimal(&w);
        set(&mut m, key, value);
        let e = refused(&AWS, &m, ABSENT, key);
        assert!(e.contains(named), "{key}: {e}");
    }
    let mut m = minimal(&w);
    set(&mut m, "nats", json!({"password": "np"}));
    let e = not_rendered(&AWS, &m, "nats password without an address");
    assert!(
        e.contains("agent.nats.address") && e.contains("nats.address"),
        "{e}"
    );
}

#[test]
fn the_proxy_properties_reach_the_cpi() {
    let w = world();
    let proxy = ForwardProxy::start();
    let mut m = minimal(&w);
    let (_, before) = through_proxy(&AWS, &mut m, &proxy, ABSENT);
    bypassing_proxy(&AWS, &mut m, &proxy, ABSENT);
    // With a CA bundle the CPI builds its own client: the proxy still holds.
    release_render::unset(&mut m, "env.no_proxy");
    set(
        &mut m,
        "aws.connection_options.ca_cert",
        json!(some_ca_pem()),
    );
    accepted(&AWS, &m, ABSENT, "through the proxy with a CA");
    assert!(
        proxy.carried().len() > before,
        "the CA client bypassed env.http_proxy"
    );
}
