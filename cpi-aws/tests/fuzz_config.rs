//! Config fuzzing: mutations of the job-shaped `cpi.json` the aws_cpi job
//! renders (a key removed, a wrong type, a huge string, a new key, mangled
//! bytes) through the real binary's `ping`: never a panic, one response, a
//! `CpiError` naming the key. Inputs that once failed live in
//! `tests/regressions/config/` and are replayed first.

use serde_json::json;
use std::path::Path;

#[test]
fn fuzz_config() {
    let bin = Path::new(env!("CARGO_BIN_EXE_cpi-aws"));
    // As env-aws writes it for moto; ping never reaches the endpoints.
    let endpoint = "http://127.0.0.1:9";
    let config = json!({"cloud": {"plugin": "aws", "properties": {
        "aws": {
            "credentials_source": "static", "access_key_id": "AKIAFUZZKEY000000001", "secret_access_key": "fuzz-secret-key-0001",
            "session_token": null, "role_arn": null, "default_iam_instance_profile": null,
            "default_key_name": "bosh", "default_security_groups": ["sg-1"],
            "max_retries": 3, "encrypted": false, "kms_key_arn": null, "metadata_options": null,
            "dualstack": false, "enable_describe_instance_types": true, "region": "us-east-1",
            "ec2_endpoint": endpoint, "ebs_endpoint": endpoint
        },
        "agent": {
            "ntp": ["0.pool.ntp.org", "1.pool.ntp.org"],
            "mbus": "https://mbus:fuzz-mbus-pw@0.0.0.0:6868",
            "blobstore": {"provider": "dav", "options": {
                "endpoint": "http://10.0.0.6:25250", "user": "agent", "password": "fuzz-blob-pw"}}
        },
        "registry": {"endpoint": "http://127.0.0.1:9", "user": "admin", "password": "fuzz-registry-pw"},
        "debug": {"cpi": {"api_version": 2}}
    }}});
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/config");
    cpi::fuzz::config_target(
        "config_aws",
        bin,
        &["{config}".to_string()],
        &config,
        &regressions,
        30,
    );
}
