//! Fuzzing the request parser and dispatcher: arbitrary bytes and
//! structurally mutated valid requests (the golden vectors) on stdin must
//! always give exactly one well-formed JSON response whose error, if any, is
//! a `Bosh::Clouds::*` kind the director knows, never a panic, and exit 0.
//! In process through `cpi::run` (thousands of inputs a second) and through
//! the real `cpi-echo` binary (fewer). Failing inputs become files under
//! `tests/regressions/requests/`, replayed first on every run.

mod common;

use cpi::fuzz::{self, Gen, Verdict};
use cpi::*;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Config {
    #[allow(dead_code)]
    fuzz: Map<String, Value>,
}

/// A cloud that answers every method from its typed arguments.
struct Answering;

impl Cloud for Answering {
    const NAME: &'static str = "cpi-fuzz";
    type Config = Config;
    fn info(_: &Config) -> Info {
        Info {
            stemcell_formats: vec!["fuzz-raw".into()],
            api_version: 2,
        }
    }
    fn new(_: Config, _: CallContext) -> Result<Self> {
        Ok(Answering)
    }
}

impl Stemcells for Answering {
    async fn create_stemcell(&self, a: CreateStemcell) -> Result<StemcellCid> {
        Ok(StemcellCid::new(format!("sc-{}", a.cloud_properties.len())))
    }
    async fn delete_stemcell(&self, _: StemcellCid) -> Result<()> {
        Ok(())
    }
}
impl Vms for Answering {
    async fn create_vm(&self, a: CreateVm) -> Result<CreatedVm> {
        if a.stemcell_cid.as_str() == "missing" {
            return Err(Error::vm_creation_failed("stemcell missing", true));
        }
        Ok(CreatedVm {
            cid: VmCid::new(format!("vm-{}", a.agent_id)),
            networks: a.networks,
        })
    }
    async fn delete_vm(&self, _: VmCid) -> Result<()> {
        Ok(())
    }
    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        Ok(cid.as_str().len() % 2 == 0)
    }
    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        Err(Error::vm_not_found(cid))
    }
    async fn set_vm_metadata(&self, _: VmCid, _: Metadata) -> Result<()> {
        Ok(())
    }
    async fn calculate_vm_cloud_properties(&self, r: VmResources) -> Result<CloudProperties> {
        Ok(
            json!({"cpu": r.cpu, "ram": r.ram, "disk": r.ephemeral_disk_size})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
    }
}
impl Disks for Answering {
    async fn create_disk(&self, a: CreateDisk) -> Result<DiskCid> {
        Ok(DiskCid::new(format!("disk-{}", a.size_mb)))
    }
    async fn delete_disk(&self, cid: DiskCid) -> Result<()> {
        Err(Error::disk_not_found(cid))
    }
    async fn has_disk(&self, _: DiskCid) -> Result<bool> {
        Ok(true)
    }
    async fn attach_disk(&self, _: VmCid, disk: DiskCid) -> Result<DiskHint> {
        Ok(DiskHint::Path(format!("/dev/{}", disk.as_str().len())))
    }
    async fn detach_disk(&self, vm: VmCid, disk: DiskCid) -> Result<()> {
        Err(Error::disk_not_attached(vm, disk))
    }
    async fn get_disks(&self, _: VmCid) -> Result<Vec<DiskCid>> {
        Ok(vec![DiskCid::new("disk-1")])
    }
    async fn resize_disk(&self, _: DiskCid, _: u64) -> Result<()> {
        Ok(())
    }
    async fn update_disk(&self, a: UpdateDisk) -> Result<DiskCid> {
        Ok(a.disk_cid)
    }
    async fn set_disk_metadata(&self, _: DiskCid, _: Metadata) -> Result<()> {
        Ok(())
    }
}
impl Snapshots for Answering {
    async fn snapshot_disk(&self, d: DiskCid, _: Metadata) -> Result<SnapshotCid> {
        Ok(SnapshotCid::new(format!("snap-{d}")))
    }
}
impl ManagedNetworks for Answering {}

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/requests")
}

/// The golden requests, as the director writes them: the seeds.
fn seeds() -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(common::golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            Some(v["request"].to_string().into_bytes())
        })
        .collect()
}

/// Mutates the bytes, or (for input that parses) the JSON structure.
fn mutate(g: &mut Gen, base: &[u8], other: &[u8]) -> Vec<u8> {
    if g.one_in(3) {
        return fuzz::mutate_bytes(g, base, other);
    }
    match serde_json::from_slice::<Value>(base) {
        Ok(doc) => {
            let (mut v, _) = fuzz::mutate_json(g, &doc);
            if let (true, Some(obj)) = (g.one_in(4), v.as_object_mut()) {
                obj.insert("method".into(), json!(g.pick(cpi::dispatch::METHODS)));
            }
            serde_json::to_vec(&v).unwrap()
        }
        Err(_) => fuzz::mutate_bytes(g, base, other),
    }
}

const KINDS: [&str; 12] = [
    "Bosh::Clouds::CpiError",
    "Bosh::Clouds::NotImplemented",
    "Bosh::Clouds::NotSupported",
    "Bosh::Clouds::CloudError",
    "Bosh::Clouds::VMNotFound",
    "Bosh::Clouds::NetworkNotFound",
    "Bosh::Clouds::VMCreationFailed",
    "Bosh::Clouds::NoDiskSpace",
    "Bosh::Clouds::DiskNotAttached",
    "Bosh::Clouds::DiskNotFound",
    "Bosh::Clouds::AttachDiskResponseError",
    "Bosh::Clouds::RetriableCloudError",
];

/// The director's view of a response: one JSON document of its schema.
fn judge(input: &[u8], status: i32, stdout: &[u8]) -> Verdict {
    if status != 0 {
        return Err(format!("exit status {status}"));
    }
    let text = std::str::from_utf8(stdout).map_err(|e| format!("stdout is not UTF-8: {e}"))?;
    if text.lines().count() != 1 || !text.ends_with('\n') {
        return Err(format!("stdout is not one line: {text:?}"));
    }
    let r: Value =
        serde_json::from_str(text).map_err(|e| format!("stdout is not JSON ({e}): {text}"))?;
    let obj = r.as_object().ok_or("the response is not an object")?;
    if !obj.contains_key("result") || !obj["log"].is_string() {
        return Err(format!("missing result or non-string log: {text}"));
    }
    let method = serde_json::from_slice::<Value>(input)
        .ok()
        .and_then(|v| v["method"].as_str().map(str::to_owned));
    match &obj["error"] {
        Value::Null => {
            if serde_json::from_slice::<Value>(input).is_err() {
                return Err("malformed JSON was answered without an error".into());
            }
            Ok(format!("ok {}", method.unwrap_or_default()))
        }
        Value::Object(e) => {
            let kind = e["type"].as_str().ok_or("error.type is not a string")?;
            let message = e["message"]
                .as_str()
                .ok_or("error.message is not a string")?;
            if !e["ok_to_retry"].is_boolean() {
                return Err("error.ok_to_retry is not a boolean".into());
            }
            if !KINDS.contains(&kind) {
                return Err(format!("unknown error type {kind}"));
            }
            if !obj["result"].is_null() {
                return Err("an error with a result".into());
            }
            if message.starts_with("internal error")
                || obj["log"].as_str().unwrap_or("").contains("panic")
            {
                return Err(format!("a panic was caught: {message}"));
            }
            if serde_json::from_slice::<Value>(input).is_err() && kind != "Bosh::Clouds::CpiError" {
                return Err(format!("malformed JSON answered {kind}"));
            }
            if message.is_empty() {
                return Err("an empty error message".into());
            }
            Ok(format!(
                "{kind} {} {}",
                method.unwrap_or_default(),
                fuzz::label(message)
            ))
        }
        other => Err(format!("error is neither null nor an object: {other}")),
    }
}

#[test]
fn fuzz_requests_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cpi.json");
    std::fs::write(&config, r#"{"fuzz": {}}"#).unwrap();
    let args = vec![config.display().to_string()];
    let report = fuzz::run(
        "requests_in_process",
        400,
        &regressions(),
        seeds(),
        mutate,
        |input| {
            cpi::secret::forget_all();
            let mut out = Vec::new();
            let status =
                cpi::run::<Answering>(&args, &mut &input[..], &mut out, cpi::log::LogSink::quiet());
            judge(input, status, &out)
        },
    );
    assert!(report.outcomes > 20, "{report}");
}

#[test]
fn fuzz_requests_through_the_binary() {
    let echo = common::Echo::new(json!({}));
    let report = fuzz::run(
        "requests_binary",
        40,
        &regressions(),
        seeds(),
        mutate,
        |input| {
            let call = run_bytes(&echo.config, input);
            judge(input, call.0, &call.1)
        },
    );
    assert!(report.executions > 0, "{report}");
}

fn run_bytes(config: &Path, stdin: &[u8]) -> (i32, Vec<u8>) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpi-echo"))
        .arg(config)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    (out.status.code().unwrap_or(-1), out.stdout)
}
