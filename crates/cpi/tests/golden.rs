//! Every method, in API v1, v2 (and v3 where it differs), through the real
//! stdin/stdout of a CPI binary: the response must match the checked-in
//! golden file, and the typed arguments that reached the cloud must too.

mod common;

use common::*;
use serde_json::{json, Value};

#[test]
fn every_golden_vector_matches() {
    let mut files: Vec<_> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let methods: std::collections::BTreeSet<String> = files
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .split('.')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for m in cpi::dispatch::METHODS {
        assert!(methods.contains(*m), "no golden vector for {m}");
    }
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let echo = Echo::new(json!({}));
        let call = echo.call(&doc["request"].to_string());
        assert_eq!(call.status, 0, "{name}: exit status");
        assert_eq!(
            call.stdout.lines().count(),
            1,
            "{name}: one JSON document on stdout"
        );
        let r = &call.response;
        assert!(r["log"].is_string(), "{name}: log is a string");
        assert_eq!(r["result"], doc["response"]["result"], "{name}: result");
        assert_eq!(r["error"], doc["response"]["error"], "{name}: error");
        let calls = echo.calls();
        match &doc["reached"] {
            Value::Null => assert!(calls.is_empty(), "{name}: reached the cloud: {calls:?}"),
            expected => assert_eq!(calls, vec![expected.clone()], "{name}: typed arguments"),
        }
    }
}
