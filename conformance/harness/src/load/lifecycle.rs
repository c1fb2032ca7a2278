//! One director-shaped lifecycle (a VM with a persistent disk, from
//! create_vm to delete_disk) and the director-style cleanup of what a failed
//! one left. Every call is its own CPI process, as `harness::cpi` runs them.

use crate::cpi::{CallError, Cpi, WireError};
use serde_json::{json, Value};
use std::time::Duration;

/// How the director treats `create_vm`'s `VMCreationFailed` with
/// `ok_to_retry`: up to `max_vm_create_tries` attempts (its default, 5).
pub const MAX_VM_CREATE_TRIES: usize = 5;

/// Attempts per cleanup call: the operator re-running the delete.
pub const CLEANUP_TRIES: usize = 3;

/// What a call answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Ok,
    /// `Bosh::Clouds::NotImplemented` where the director treats it as "this
    /// cloud has none" (set_disk_metadata, snapshots).
    NotImplemented,
    Error(WireError),
    /// No valid answer: a crash, a hang, malformed output.
    Broken(String),
}

impl Answer {
    pub fn error_kind(&self) -> Option<String> {
        match self {
            Answer::Error(e) => Some(e.kind.clone()),
            Answer::Broken(why) => Some(format!(
                "no valid answer ({})",
                why.split(':').next().unwrap_or(why)
            )),
            _ => None,
        }
    }

    pub fn message(&self) -> Option<&str> {
        match self {
            Answer::Error(e) => Some(&e.message),
            Answer::Broken(why) => Some(why),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: &'static str,
    pub elapsed: Duration,
    pub answer: Answer,
    /// Made by the cleanup, not the lifecycle.
    pub cleanup: bool,
}

/// The arguments of one lifecycle, made beforehand from the environment.
#[derive(Clone, Debug)]
pub struct Input {
    pub label: String,
    pub agent_id: String,
    pub stemcell: String,
    pub vm_cloud_properties: Value,
    pub networks: Value,
    pub vm_env: Value,
    pub disk_cloud_properties: Value,
    pub disk_size_mb: u64,
}

/// What the cloud may still hold for a lifecycle, by the calls' answers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Targets {
    pub snapshots: Vec<String>,
    /// Attached (or attach_disk failed), never detached: (vm, disk).
    pub attachments: Vec<(String, String)>,
    pub vms: Vec<String>,
    pub disks: Vec<String>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
            && self.attachments.is_empty()
            && self.vms.is_empty()
            && self.disks.is_empty()
    }

    pub fn merge(&mut self, other: Targets) {
        self.snapshots.extend(other.snapshots);
        self.attachments.extend(other.attachments);
        self.vms.extend(other.vms);
        self.disks.extend(other.disks);
    }
}

#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub calls: Vec<Call>,
    /// Every cid a call returned (VMs, disks, snapshots).
    pub returned: Vec<String>,
    /// What is left to remove: non-empty only when the lifecycle failed.
    pub left: Targets,
    /// The call that failed and its error, when one did.
    pub failure: Option<String>,
}

struct Failed;

struct Run<'a> {
    cpi: &'a Cpi,
    out: Outcome,
}

impl Run<'_> {
    fn call(&mut self, method: &'static str, args: Vec<Value>) -> Result<Value, Answer> {
        let (answer, value, elapsed) = call(self.cpi, method, args);
        self.out.calls.push(Call {
            method,
            elapsed,
            answer: answer.clone(),
            cleanup: false,
        });
        match answer {
            Answer::Ok => Ok(value),
            other => Err(other),
        }
    }

    /// A call that must succeed: a failure ends the lifecycle.
    fn must(&mut self, method: &'static str, args: Vec<Value>) -> Result<Value, Failed> {
        self.call(method, args).map_err(|a| self.fail(method, &a))
    }

    /// A call the director skips on NotImplemented.
    fn optional(
        &mut self,
        method: &'static str,
        args: Vec<Value>,
    ) -> Result<Option<Value>, Failed> {
        match self.call(method, args) {
            Ok(v) => Ok(Some(v)),
            Err(Answer::Error(e)) if e.kind == "Bosh::Clouds::NotImplemented" => {
                if let Some(last) = self.out.calls.last_mut() {
                    last.answer = Answer::NotImplemented;
                }
                Ok(None)
            }
            Err(a) => Err(self.fail(method, &a)),
        }
    }

    fn fail(&mut self, method: &str, answer: &Answer) -> Failed {
        self.out.failure = Some(format!(
            "{method}: {}: {}",
            answer.error_kind().unwrap_or_default(),
            answer.message().unwrap_or_default()
        ));
        Failed
    }

    fn returned(&mut self, method: &str, v: &Value) -> Result<String, Failed> {
        match v.as_str() {
            Some(s) if !s.is_empty() => {
                self.out.returned.push(s.to_owned());
                Ok(s.to_owned())
            }
            _ => {
                self.out.failure = Some(format!("{method}: answered {v}, not a cid"));
                Err(Failed)
            }
        }
    }

    /// The director's create_vm: retried on VMCreationFailed with ok_to_retry.
    fn create_vm(&mut self, input: &Input) -> Result<String, Failed> {
        let args = vec![
            json!(input.agent_id),
            json!(input.stemcell),
            input.vm_cloud_properties.clone(),
            input.networks.clone(),
            json!([]),
            input.vm_env.clone(),
        ];
        for attempt in 1..=MAX_VM_CREATE_TRIES {
            match self.call("create_vm", args.clone()) {
                Ok(v) => {
                    // v2: [cid, networks]; v1: cid.
                    let cid = if v.is_array() { v[0].clone() } else { v };
                    return self.returned("create_vm", &cid);
                }
                Err(Answer::Error(e))
                    if e.kind == "Bosh::Clouds::VMCreationFailed"
                        && e.ok_to_retry
                        && attempt < MAX_VM_CREATE_TRIES => {}
                Err(a) => return Err(self.fail("create_vm", &a)),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn lifecycle(&mut self, input: &Input) -> Result<(), Failed> {
        let vm = self.create_vm(input)?;
        self.out.left.vms.push(vm.clone());
        self.must(
            "set_vm_metadata",
            vec![
                json!(vm),
                json!({"director": "load", "deployment": "load", "job": "web",
                       "index": "0", "name": format!("web/{}", input.label),
                       "id": input.agent_id, "created_at": "2024-01-01T00:00:00Z"}),
            ],
        )?;
        let disk = self.must(
            "create_disk",
            vec![
                json!(input.disk_size_mb),
                input.disk_cloud_properties.clone(),
                json!(vm),
            ],
        )?;
        let disk = self.returned("create_disk", &disk)?;
        self.out.left.disks.push(disk.clone());
        // Maybe attached from here on, even when attach_disk fails: the
        // director detaches an instance's disks before deleting its VM.
        self.out.left.attachments.push((vm.clone(), disk.clone()));
        self.must("attach_disk", vec![json!(vm), json!(disk)])?;
        let has = self.must("has_vm", vec![json!(vm)])?;
        if has != json!(true) {
            self.out.failure = Some(format!("has_vm: answered {has} for a VM just made"));
            return Err(Failed);
        }
        self.optional(
            "set_disk_metadata",
            vec![
                json!(disk),
                json!({"director": "load", "deployment": "load", "instance_group": "web",
                       "instance_index": "0", "instance_id": input.agent_id,
                       "attached_at": "2024-01-01T00:00:00Z"}),
            ],
        )?;
        let snapshot = self.optional(
            "snapshot_disk",
            vec![
                json!(disk),
                json!({"deployment": "load", "job": "web", "index": "0",
                       "director_name": "load", "agent_id": input.agent_id,
                       "instance_id": input.agent_id}),
            ],
        )?;
        if let Some(s) = snapshot {
            let s = self.returned("snapshot_disk", &s)?;
            self.out.left.snapshots.push(s.clone());
            self.must("delete_snapshot", vec![json!(s)])?;
            self.out.left.snapshots.retain(|x| *x != s);
        }
        self.must("detach_disk", vec![json!(vm), json!(disk)])?;
        self.out.left.attachments.clear();
        self.must("delete_vm", vec![json!(vm)])?;
        self.out.left.vms.clear();
        self.must("delete_disk", vec![json!(disk)])?;
        self.out.left.disks.clear();
        Ok(())
    }
}

/// Runs one lifecycle; on failure, `left` says what the cloud may still hold.
pub fn run(cpi: &Cpi, input: &Input) -> Outcome {
    let mut run = Run {
        cpi,
        out: Outcome::default(),
    };
    if run.lifecycle(input).is_ok() {
        run.out.left = Targets::default();
    }
    run.out
}

/// One call, timed, its answer classified.
pub fn call(cpi: &Cpi, method: &'static str, args: Vec<Value>) -> (Answer, Value, Duration) {
    match cpi.call(method, args) {
        Ok(reply) => match reply.error {
            None => (Answer::Ok, reply.result, reply.elapsed),
            Some(e) => (Answer::Error(e), Value::Null, reply.elapsed),
        },
        Err(e) => {
            let elapsed = match &e {
                CallError::Hung(d) => *d,
                _ => Duration::ZERO,
            };
            (Answer::Broken(e.to_string()), Value::Null, elapsed)
        }
    }
}

/// A cleanup call the director counts as done: it worked, or the cloud no
/// longer has the thing or the attachment (the director ignores VMNotFound,
/// DiskNotFound and DiskNotAttached there).
fn done(answer: &Answer) -> bool {
    match answer {
        Answer::Ok => true,
        Answer::Error(e) => matches!(
            e.kind.as_str(),
            "Bosh::Clouds::VMNotFound"
                | "Bosh::Clouds::DiskNotFound"
                | "Bosh::Clouds::DiskNotAttached"
        ),
        _ => false,
    }
}

/// The director-style cleanup: snapshots, detaches, VMs, then disks, each
/// call tried up to [`CLEANUP_TRIES`] times. Answers the calls made and what
/// still could not be removed. A detach that keeps failing is not a leak by
/// itself: the VM's deletion frees the disk.
pub fn cleanup(cpi: &Cpi, targets: &Targets) -> (Vec<Call>, Targets) {
    let mut calls = Vec::new();
    let mut left = Targets::default();
    let mut attempt = |method: &'static str, args: Vec<Value>| -> bool {
        for _ in 0..CLEANUP_TRIES {
            let (answer, _, elapsed) = call(cpi, method, args.clone());
            let ok = done(&answer);
            calls.push(Call {
                method,
                elapsed,
                answer,
                cleanup: true,
            });
            if ok {
                return true;
            }
        }
        false
    };
    for s in &targets.snapshots {
        if !attempt("delete_snapshot", vec![json!(s)]) {
            left.snapshots.push(s.clone());
        }
    }
    for (vm, disk) in &targets.attachments {
        attempt("detach_disk", vec![json!(vm), json!(disk)]);
    }
    for vm in &targets.vms {
        if !attempt("delete_vm", vec![json!(vm)]) {
            left.vms.push(vm.clone());
        }
    }
    for disk in &targets.disks {
        if !attempt("delete_disk", vec![json!(disk)]) {
            left.disks.push(disk.clone());
        }
    }
    (calls, left)
}
