//! The reference CPI's `cpi.json`: where its cloud lives, the agent block,
//! the registry, a credential to keep secret, and the behaviours to break.

use agent::{AgentOptions, RegistryConfig};
use cpi::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    /// The directory that is the cloud.
    pub dir: PathBuf,
    #[serde(default)]
    pub agent: AgentOptions,
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    /// A credential the "cloud API" would take: it must never be logged.
    pub api_key: Secret,
    #[serde(default)]
    pub retry: Retry,
    /// Behaviours to break on purpose, one per conformance group or more.
    #[serde(default, rename = "break")]
    pub breaks: Vec<Break>,
}

/// How the CPI retries a transient cloud error.
#[derive(Clone, Debug, Deserialize)]
pub struct Retry {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub attempts: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial_ms: 20,
            max_ms: 200,
            attempts: 6,
        }
    }
}

impl Retry {
    pub fn backoff(&self) -> cpi::wait::Backoff {
        cpi::wait::Backoff::new(
            Duration::from_millis(self.initial_ms),
            Duration::from_millis(self.max_ms),
            Duration::from_secs(30),
        )
        .attempts(self.attempts)
    }
}

/// A deliberately broken behaviour, named after what goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Break {
    // protocol
    /// `info` asks the cloud first (and fails or waits when it cannot).
    InfoTouchesCloud,
    // stemcells
    /// A stemcell whose image does not unpack is left half-made.
    StemcellLeaksOnBadImage,
    // vms
    /// `has_vm` of a missing VM answers VMNotFound instead of false.
    HasVmErrorsForMissing,
    /// `delete_vm` of a missing VM fails.
    DeleteVmMissingFails,
    /// The agent settings lose their NTP servers.
    SettingsDropNtp,
    // disks
    /// `attach_disk` answers an empty disk hint.
    AttachEmptyHint,
    /// Reattaching a disk loses its data.
    DiskDataLostOnReattach,
    // flows
    /// Attaching a second disk detaches the first (no two disks at once).
    SingleAttach,
    /// `delete_vm` leaves its disks recorded as attached to the dead VM.
    DeleteVmKeepsAttachments,
    // faults
    /// A `create_vm` that fails part-way leaves its VM behind.
    CreateVmLeaksOnFailure,
    /// Transient cloud errors are not retried.
    NoRetry,
    // hygiene
    /// The API key is written to stderr, past the scrubber.
    SecretLogged,
    /// `delete_vm` leaves the VM's network port behind.
    DeleteVmLeaksPort,
}

impl Config {
    pub fn broken(&self, b: Break) -> bool {
        self.breaks.contains(&b)
    }
}
