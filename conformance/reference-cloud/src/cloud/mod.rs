//! The reference CPI: a cloud kept as files, reached through a pretend API
//! (`request`) that acts out the faults the environment asks for and that
//! the CPI retries like a real client.

mod disks;
mod stemcells;
mod vms;

use crate::config::{Break, Config};
use crate::store::{ChaosDraw, Store};
use cpi::{CallContext, Classify, ErrorKind, Info, Result};
use std::time::Duration;

/// Failures of the pretend cloud API and of the files behind it.
#[derive(Debug, thiserror::Error)]
pub enum CloudFault {
    #[error("{op}: the cloud answered 503 Service Unavailable (throttled)")]
    Throttled { op: &'static str },
    #[error("{op}: the cloud answered 500 Internal Server Error")]
    ServerError { op: &'static str },
    #[error("{op}: the connection to the cloud was reset")]
    Dropped { op: &'static str },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl Classify for CloudFault {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Cloud
    }
    fn ok_to_retry(&self) -> bool {
        !matches!(self, CloudFault::Io { .. })
    }
}

/// `io::Result` → a `CloudError` that says what was being done.
pub(crate) fn io<T>(what: impl Into<String>, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|source| {
        CloudFault::Io {
            what: what.into(),
            source,
        }
        .into()
    })
}

pub struct Reference {
    config: Config,
    ctx: CallContext,
    store: Store,
}

impl cpi::Cloud for Reference {
    const NAME: &'static str = "cpi-reference";
    type Config = Config;

    fn info(config: &Config) -> Info {
        if config.broken(Break::InfoTouchesCloud) {
            // Broken on purpose: asks the cloud before answering.
            let faults = Store::new(&config.dir).faults();
            if faults.latency_ms > 0 {
                std::thread::sleep(Duration::from_millis(faults.latency_ms));
            }
            if faults.persistent {
                panic!("info: the cloud is unreachable");
            }
        }
        Info {
            stemcell_formats: vec!["reference-tgz".into()],
            api_version: 2,
        }
    }

    fn new(config: Config, ctx: CallContext) -> Result<Self> {
        let store = Store::new(&config.dir);
        Ok(Reference { config, ctx, store })
    }
}

impl Reference {
    fn broken(&self, b: Break) -> bool {
        self.config.broken(b)
    }

    /// One request to the pretend cloud API: acts out the injected faults,
    /// retried with backoff while they are transient.
    async fn request(&self, op: &'static str) -> Result<()> {
        let classify = |e: &cpi::Error| {
            if e.ok_to_retry() && !self.broken(Break::NoRetry) {
                cpi::wait::Verdict::Retry
            } else {
                cpi::wait::Verdict::Fail
            }
        };
        cpi::wait::retry(op, self.config.retry.backoff(), classify, || {
            self.attempt(op)
        })
        .await
    }

    async fn attempt(&self, op: &'static str) -> Result<()> {
        let latency_ms = self.store.faults().latency_ms;
        if latency_ms > 0 {
            // The cloud is slow: this is the fake's delay, not a wait of ours.
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        }
        if let Some(shares) = self.store.chaos() {
            // The top 48 bits of a v4 UUID are random: x is uniform in [0, 1).
            let x = (uuid::Uuid::new_v4().as_u128() >> 80) as f64 / (1u64 << 48) as f64;
            let draw = ChaosDraw::draw(&shares, x);
            io("recording a request", self.store.log_chaos(draw))?;
            match draw {
                ChaosDraw::Throttled => return Err(CloudFault::Throttled { op }.into()),
                ChaosDraw::ServerError => return Err(CloudFault::ServerError { op }.into()),
                ChaosDraw::Served => {}
            }
        }
        // One-shot faults are taken under the store's lock, so that of many
        // CPI processes at once exactly one acts each out.
        let fault = io(
            "recording a fault",
            self.store.update_faults(|f| {
                if f.persistent {
                    Some(CloudFault::ServerError { op })
                } else if f.drop > 0 {
                    f.drop -= 1;
                    Some(CloudFault::Dropped { op })
                } else if f.transient > 0 {
                    f.transient -= 1;
                    Some(CloudFault::Throttled { op })
                } else {
                    None
                }
            }),
        )?;
        match fault {
            Some(f) => Err(f.into()),
            None => Ok(()),
        }
    }

    /// True once: the environment asked the next create_vm to fail after
    /// the VM exists.
    fn take_create_vm_fault(&self) -> bool {
        self.store
            .update_faults(|f| std::mem::replace(&mut f.create_vm_after_vm_exists, false))
            .unwrap_or(false)
    }
}

impl cpi::Snapshots for Reference {
    async fn snapshot_disk(
        &self,
        disk: cpi::DiskCid,
        metadata: cpi::Metadata,
    ) -> Result<cpi::SnapshotCid> {
        self.request("create_snapshot").await?;
        if self.store.disk(disk.as_str()).is_none() {
            return Err(cpi::Error::disk_not_found(&disk));
        }
        let cid = format!("snap-{}", uuid::Uuid::new_v4().simple());
        let record = serde_json::json!({"disk": disk, "metadata": metadata});
        io(
            "saving the snapshot",
            crate::store::write_json(&self.store.snapshot_file(&cid), &record),
        )?;
        Ok(cpi::SnapshotCid::new(cid))
    }

    async fn delete_snapshot(&self, cid: cpi::SnapshotCid) -> Result<()> {
        self.request("delete_snapshot").await?;
        match std::fs::remove_file(self.store.snapshot_file(cid.as_str())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                io("deleting the snapshot", Err(e))
            }
            _ => Ok(()),
        }
    }
}

impl cpi::ManagedNetworks for Reference {}
