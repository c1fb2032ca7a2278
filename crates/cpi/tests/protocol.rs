//! Bad input, errors and hygiene, through the real binary: every case gets
//! one JSON response with an error the director understands, and exit 0.

mod common;

use common::*;
use serde_json::{json, Value};

fn error_of(call: &Call) -> (String, String, bool) {
    assert_eq!(call.status, 0, "exit status; stderr: {}", call.stderr);
    assert_eq!(
        call.stdout.lines().count(),
        1,
        "one JSON document: {}",
        call.stdout
    );
    let e = &call.response["error"];
    assert!(call.response["log"].is_string());
    assert_eq!(call.response["result"], Value::Null);
    (
        e["type"].as_str().expect("error.type").to_owned(),
        e["message"].as_str().expect("error.message").to_owned(),
        e["ok_to_retry"].as_bool().expect("error.ok_to_retry"),
    )
}

#[test]
fn malformed_json_is_a_cpi_error() {
    let (t, m, retry) = error_of(&Echo::new(json!({})).call("{\"method\": "));
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(m.contains("malformed request JSON"), "{m}");
    assert!(!retry);
}

#[test]
fn empty_stdin_is_a_cpi_error() {
    let (t, m, _) = error_of(&Echo::new(json!({})).call(""));
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(m.contains("empty request"), "{m}");
}

#[test]
fn a_request_without_method_names_it() {
    let (t, m, _) = error_of(&Echo::new(json!({})).call(r#"{"arguments": []}"#));
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(m.contains("method"), "{m}");
}

#[test]
fn unknown_method_is_not_implemented_and_named() {
    let (t, m, _) =
        error_of(&Echo::new(json!({})).call(r#"{"method": "frobnicate", "arguments": []}"#));
    assert_eq!(t, "Bosh::Clouds::NotImplemented");
    assert!(m.contains("frobnicate"), "{m}");
}

#[test]
fn wrong_argument_count_names_the_arguments() {
    let echo = Echo::new(json!({}));
    let (t, m, _) = error_of(&echo.call(r#"{"method": "attach_disk", "arguments": ["vm-1"]}"#));
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(
        m.contains("attach_disk: expected 2 arguments (vm_cid, disk_cid), got 1"),
        "{m}"
    );
    assert!(echo.calls().is_empty());
}

#[test]
fn wrong_argument_type_names_argument_and_path() {
    let echo = Echo::new(json!({}));
    let (t, m, _) = error_of(&echo.call(
        r#"{"method": "create_vm", "arguments": ["a", "s", {}, {"default": {"type": "manual", "dns": "8.8.8.8"}}, [], {}]}"#,
    ));
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(
        m.contains("argument 4 (networks)") && m.contains("default.dns"),
        "{m}"
    );
    let (_, m, _) =
        error_of(&echo.call(r#"{"method": "create_disk", "arguments": ["big", {}, null]}"#));
    assert!(m.contains("argument 1 (size)"), "{m}");
    assert!(echo.calls().is_empty());
}

#[test]
fn missing_unreadable_and_invalid_configs_are_named() {
    let req = r#"{"method": "has_vm", "arguments": ["vm-1"]}"#;
    let (t, m, _) = error_of(&run(&[], req));
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(m.contains("no config file given"), "{m}");

    let (t, m, _) = error_of(&run(&["/nonexistent/cpi.json"], req));
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(m.contains("/nonexistent/cpi.json"), "{m}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cpi.json");
    std::fs::write(&bad, "{not json").unwrap();
    let (_, m, _) = error_of(&run(&[bad.to_str().unwrap()], req));
    assert!(m.contains("not valid JSON"), "{m}");

    std::fs::write(&bad, r#"{"echo": {"api_version": "two"}}"#).unwrap();
    let (_, m, _) = error_of(&run(&[bad.to_str().unwrap()], req));
    assert!(m.contains("echo.api_version"), "{m}");

    std::fs::write(&bad, r#"{"cloud": {}}"#).unwrap();
    let (_, m, _) = error_of(&run(&[bad.to_str().unwrap()], req));
    assert!(m.contains("missing field `echo`"), "{m}");
}

#[test]
fn unknown_config_keys_are_warned_not_refused() {
    let echo = Echo::new(json!({"legacy_key": 1}));
    let call = echo.call(r#"{"method": "has_vm", "arguments": ["vm-exists"]}"#);
    assert_eq!(call.response["result"], json!(true));
    assert!(call.stderr.contains("echo.legacy_key"), "{}", call.stderr);
}

#[test]
fn every_invocation_form_of_todays_jobs_works() {
    let echo = Echo::new(json!({}));
    let cfg = echo.config.to_str().unwrap();
    let req = r#"{"method": "has_vm", "arguments": ["vm-exists"]}"#;
    for args in [
        vec![cfg.to_owned()],
        vec![cfg.to_owned(), "/dev/null".to_owned()],
        vec![format!("-configPath={cfg}")],
        vec!["-configPath".to_owned(), cfg.to_owned()],
        vec![format!("-configFile={cfg}"), "-caCert=/dev/null".to_owned()],
        vec!["--config".to_owned(), cfg.to_owned()],
    ] {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(run(&argv, req).response["result"], json!(true), "{args:?}");
    }
    let help = run(&["--help"], "");
    assert_eq!(help.status, 0);
    assert!(help.stdout.contains("Usage:"));
    let version = run(&["--version"], "");
    assert!(version.stdout.starts_with("cpi-echo "));
}

#[test]
fn a_panic_is_a_json_cpi_error_without_a_stack_trace() {
    let echo = Echo::new(json!({"panic_on": "delete_vm"}));
    let call = echo.call(r#"{"method": "delete_vm", "arguments": ["vm-1"]}"#);
    let (t, m, _) = error_of(&call);
    assert_eq!(t, "Bosh::Clouds::CpiError");
    assert!(m.contains("echo was told to panic in delete_vm"), "{m}");
    assert!(!call.stderr.contains("stack backtrace"), "{}", call.stderr);
}

#[test]
fn error_kinds_survive_wrapping() {
    let echo = Echo::new(json!({}));
    let (t, m, _) = error_of(&echo.call(r#"{"method": "reboot_vm", "arguments": ["vm-missing"]}"#));
    assert_eq!(t, "Bosh::Clouds::VMNotFound");
    assert!(m.starts_with("reboot_vm: "), "{m}");
    let (t, _, _) = error_of(
        &echo.call(r#"{"method": "detach_disk", "arguments": ["vm-1", "disk-detached"]}"#),
    );
    assert_eq!(t, "Bosh::Clouds::DiskNotAttached");
}

#[test]
fn context_overrides_the_config_for_one_call() {
    let echo = Echo::new(json!({"label": "from-file"}));
    echo.call(r#"{"method": "has_vm", "arguments": ["vm-1"], "context": {"echo": {"label": "from-context"}, "request_id": "r"}}"#);
    echo.call(r#"{"method": "has_vm", "arguments": ["vm-1"]}"#);
    let labels: Vec<_> = echo.calls().iter().map(|c| c["label"].clone()).collect();
    assert_eq!(labels, vec![json!("from-context"), json!("from-file")]);
}

#[test]
fn info_never_reaches_the_cloud_and_reports_the_configured_version() {
    let echo = Echo::new(json!({"api_version": 1}));
    let call = echo.call(r#"{"method": "info", "arguments": []}"#);
    assert_eq!(call.response["result"]["api_version"], json!(1));
    assert!(echo.calls().is_empty());
    // A v2 request to a CPI that reports v1 gets v1 shapes.
    let call = echo
        .call(r#"{"method": "attach_disk", "arguments": ["vm-1", "disk-1"], "api_version": 2}"#);
    assert_eq!(call.response["result"], Value::Null);
}

#[test]
fn secrets_from_env_config_and_settings_never_reach_the_logs() {
    let echo = Echo::new(
        json!({"agent": {"mbus": "https://mbus:mbus-secret-42@0.0.0.0:6868", "password": "cfg-secret-43"}}),
    );
    let call = echo.call(
        r#"{"method": "create_vm", "arguments": ["agent-1", "s", {}, {}, [], {"bosh": {"password": "env-secret-44"}}],
            "context": {"request_id": "env-secret-44 mbus-secret-42 cfg-secret-43"}}"#,
    );
    assert!(call.response["error"].is_null(), "{}", call.stdout);
    // The request id is logged on every line: it carries the secrets here.
    assert!(call.stderr.contains("<redacted>"), "{}", call.stderr);
    for s in ["env-secret-44", "mbus-secret-42", "cfg-secret-43"] {
        assert!(!call.stderr.contains(s), "{s} in stderr: {}", call.stderr);
        assert!(
            !call.response["log"].as_str().unwrap().contains(s),
            "{s} in log"
        );
    }
}
