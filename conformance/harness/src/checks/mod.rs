//! The checks, one file per group, and the list that names them. A check is
//! a plain function over a [`Ctx`]; it passes, fails with a reason, or is
//! skipped when the cloud cannot do what it needs (a fault it cannot inject).

mod ctx;
pub mod disks;
pub mod faults;
pub mod flows;
pub mod hygiene;
pub mod protocol;
pub mod settings;
pub mod stemcells;
pub mod vms;

pub use ctx::{Ctx, Info};

use crate::cpi::{CallError, WireError};

/// Why a check stopped before the end.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    Fail(String),
    Skip(String),
}

impl From<CallError> for Stop {
    fn from(e: CallError) -> Self {
        Stop::Fail(e.to_string())
    }
}

pub type Outcome = Result<(), Stop>;

/// One named check.
#[derive(Clone, Copy)]
pub struct Check {
    pub group: &'static str,
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> Outcome,
}

impl Check {
    /// `group/name`, as printed and as `--only` takes it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

/// Fails the check with a formatted reason.
macro_rules! fail {
    ($($t:tt)*) => { return Err($crate::checks::Stop::Fail(format!($($t)*))) };
}
/// Fails the check unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => { if !$cond { return Err($crate::checks::Stop::Fail(format!($($t)*))) } };
}
/// Skips the check with a reason.
macro_rules! skip {
    ($($t:tt)*) => { return Err($crate::checks::Stop::Skip(format!($($t)*))) };
}
pub(crate) use {ensure, fail, skip};

/// A check's name and its function, as each group lists them.
pub type NamedCheck = (&'static str, fn(&mut Ctx) -> Outcome);

/// Every check, in the order the suite runs them: hygiene last, so that it
/// sees the whole run.
pub fn all() -> Vec<Check> {
    let groups: [(&'static str, &[NamedCheck]); 7] = [
        ("protocol", protocol::CHECKS),
        ("stemcells", stemcells::CHECKS),
        ("vms", vms::CHECKS),
        ("disks", disks::CHECKS),
        ("flows", flows::CHECKS),
        ("faults", faults::CHECKS),
        ("hygiene", hygiene::CHECKS),
    ];
    groups
        .iter()
        .flat_map(|(group, checks)| {
            checks.iter().map(move |(name, run)| Check {
                group,
                name,
                run: *run,
            })
        })
        .collect()
}

/// `Type: message` for reports.
pub fn describe(e: &WireError) -> String {
    format!("{}: {}", e.kind, e.message)
}

pub const CPI_ERROR: &str = "Bosh::Clouds::CpiError";
pub const NOT_IMPLEMENTED: &str = "Bosh::Clouds::NotImplemented";
pub const VM_CREATION_FAILED: &str = "Bosh::Clouds::VMCreationFailed";
pub const CLOUD_ERROR: &str = "Bosh::Clouds::CloudError";
pub const DISK_NOT_ATTACHED: &str = "Bosh::Clouds::DiskNotAttached";
pub const DISK_NOT_FOUND: &str = "Bosh::Clouds::DiskNotFound";
