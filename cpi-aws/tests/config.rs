//! Config and protocol edges through the real binary: `info` needs no
//! cloud, bad configs name the key.

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

fn run(config: &Value, request: &Value) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpi.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpi-aws"))
        .arg(&path)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        serde_json::from_str(&stdout).expect("one JSON document"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(aws: Value) -> Value {
    json!({"cloud": {"plugin": "aws", "properties": {
        "aws": aws, "agent": {"ntp": [], "mbus": "https://mbus:mbus-secret-pw@0.0.0.0:6868"},
        "debug": {"cpi": {"api_version": 2}}}}})
}

fn good_aws() -> Value {
    json!({"credentials_source": "static", "access_key_id": "AKIACONFIGTEST00001", "secret_access_key": "config-test-secret-1234",
           "session_token": null, "role_arn": null, "default_iam_instance_profile": null, "default_key_name": "bosh",
           "default_security_groups": ["bosh"], "max_retries": 8, "encrypted": false, "kms_key_arn": null,
           "metadata_options": null, "dualstack": false, "enable_describe_instance_types": true,
           // Nothing listens here: info must not try.
           "region": "us-east-1", "ec2_endpoint": "http://127.0.0.1:9"})
}

fn request(method: &str, args: Value) -> Value {
    json!({"method": method, "arguments": args, "context": {"director_uuid": "d", "request_id": "r"}, "api_version": 2})
}

#[test]
fn info_answers_from_config_alone() {
    let (r, _) = run(&config(good_aws()), &request("info", json!([])));
    assert_eq!(
        r["result"],
        json!({"stemcell_formats": ["aws-raw", "aws-light"], "api_version": 2})
    );
    let mut c = config(good_aws());
    c["cloud"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("debug");
    let (r, _) = run(&c, &request("info", json!([])));
    assert_eq!(r["result"]["api_version"], 3, "the job's default");
}

#[test]
fn bad_configs_name_the_key() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"region": "mars"}), "cloud.properties.aws.region"),
        (
            json!({"region": null, "ec2_endpoint": null}),
            "cloud.properties.aws.region",
        ),
        (
            json!({"access_key_id": null}),
            "cloud.properties.aws.access_key_id",
        ),
        (
            json!({"secret_access_key": ""}),
            "cloud.properties.aws.secret_access_key",
        ),
        (
            json!({"credentials_source": "env_or_profile"}),
            "env_or_profile",
        ),
        (json!({"credentials_source": "magic"}), "credentials_source"),
        (json!({"max_retries": "eight"}), "max_retries"),
    ];
    for (patch, key) in cases {
        let mut aws = good_aws();
        for (k, v) in patch.as_object().unwrap() {
            aws[k] = v.clone();
        }
        let (r, stderr) = run(&config(aws), &request("has_vm", json!(["i-1"])));
        let e = &r["error"];
        assert_eq!(e["type"], "Bosh::Clouds::CpiError", "{patch}: {r}");
        assert!(
            e["message"].as_str().unwrap().contains(key),
            "{patch}: {}",
            e["message"]
        );
        assert!(
            !stderr.contains("config-test-secret-1234") && !stderr.contains("mbus-secret-pw"),
            "{stderr}"
        );
    }
}

#[test]
fn unreachable_cloud_is_a_clear_cloud_error_within_the_bound() {
    let mut aws = good_aws();
    aws["max_retries"] = json!(0);
    let (r, stderr) = run(&config(aws), &request("has_vm", json!(["i-1"])));
    assert_eq!(r["error"]["type"], "Bosh::Clouds::CloudError", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DescribeInstances"),
        "{r}"
    );
    assert!(!stderr.contains("config-test-secret-1234"), "{stderr}");
}

#[test]
fn context_overrides_go_over_cloud_properties_aws() {
    let mut req = request("info", json!([]));
    req["context"]["region"] = json!("not a region");
    // info does not validate; has_vm does, and sees the override.
    let mut req2 = request("has_vm", json!(["i-1"]));
    req2["context"]["region"] = json!("not a region");
    let (r, _) = run(&config(good_aws()), &req2);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'not a region'"),
        "{r}"
    );
    let _ = req;
}

#[test]
fn a_missing_ca_bundle_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cpi.json");
    std::fs::write(&path, config(good_aws()).to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpi-aws"))
        .arg(&path)
        .env_clear()
        .env("BOSH_CA_CERT_FILE", "/nonexistent/ca.pem")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request("has_vm", json!(["i-1"])).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["error"]["type"], "Bosh::Clouds::CpiError", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/ca.pem"),
        "{r}"
    );
}
