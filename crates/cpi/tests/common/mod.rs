//! Runs the `cpi-echo` binary the way the director does.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Call {
    pub response: Value,
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

pub struct Echo {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Echo {
    pub fn new(extra: Value) -> Echo {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cpi.json");
        let mut echo = json!({"record_to": dir.path().join("calls.jsonl")});
        if let (Some(e), Some(x)) = (echo.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                e.insert(k.clone(), v.clone());
            }
        }
        std::fs::write(&config, json!({"echo": echo}).to_string()).unwrap();
        Echo { dir, config }
    }

    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("calls.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn call(&self, stdin: &str) -> Call {
        run(&[self.config.to_str().unwrap()], stdin)
    }
}

pub fn run(args: &[&str], stdin: &str) -> Call {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpi-echo"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let response = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    Call {
        response,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        status: out.status.code().unwrap_or(-1),
    }
}

pub fn golden_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}
