//! The SoftLayer cloud: config, `info`, the lazily built API client, and
//! the helpers every method shares (ids, not-found answers, waits).

use crate::client::{Call, Client};
use crate::config::{Checked, Config};
use crate::error::SlError;
use cpi::{CallContext, Cloud, Error, Info, Result};
use serde_json::{Map, Value};
use std::sync::OnceLock;

pub const GUEST: &str = "SoftLayer_Virtual_Guest";
pub const STORAGE: &str = "SoftLayer_Network_Storage";
pub const TEMPLATE: &str = "SoftLayer_Virtual_Guest_Block_Device_Template_Group";

pub struct SoftLayer {
    pub config: Checked,
    pub ctx: CallContext,
    client: OnceLock<Client>,
    swift: OnceLock<crate::swift::Swift>,
}

impl Cloud for SoftLayer {
    const NAME: &'static str = "cpi-softlayer";
    type Config = Config;

    fn info(config: &Config) -> Info {
        // Heavy stemcells (`softlayer-ovf`, as the stemcell builder names
        // them) are imported through object storage: claimed only when it
        // is configured.
        let sl = &config.cloud.properties.softlayer;
        let swift = sl
            .swift_endpoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty());
        let mut stemcell_formats = vec!["softlayer-light".to_owned()];
        if swift {
            stemcell_formats.push("softlayer-ovf".to_owned());
        }
        Info {
            stemcell_formats,
            api_version: 2,
        }
    }

    fn merge_context(config: &mut Value, overrides: &Map<String, Value>) {
        crate::config::merge_context(config, overrides)
    }

    fn new(config: Config, ctx: CallContext) -> Result<Self> {
        Ok(SoftLayer {
            config: config.check()?,
            ctx,
            client: OnceLock::new(),
            swift: OnceLock::new(),
        })
    }
}

impl SoftLayer {
    /// The API client, built on first use.
    pub fn api(&self) -> Result<&Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let c = Client::new(
            &self.config.endpoint,
            &self.config.username,
            &self.config.api_key,
            self.config.waits,
        )?;
        Ok(self.client.get_or_init(|| c))
    }

    /// The object storage client, built on first use; a clear error when
    /// object storage is not configured.
    pub fn swift(&self) -> Result<&crate::swift::Swift> {
        if let Some(s) = self.swift.get() {
            return Ok(s);
        }
        let config = self.config.swift.clone().ok_or_else(|| {
            Error::cpi(
                "create_stemcell: a heavy stemcell is imported through object storage: \
                 set cloud.properties.softlayer.swift_endpoint and swift_username",
            )
        })?;
        let s = crate::swift::Swift::new(config, self.config.waits)?;
        Ok(self.swift.get_or_init(|| s))
    }

    pub async fn send<T: serde::de::DeserializeOwned>(&self, call: Call) -> Result<T, SlError> {
        match self.api() {
            Ok(api) => api.send(call).await,
            Err(e) => Err(SlError::Transport {
                call: call.name(),
                message: e.message().to_owned(),
                connect: true,
            }),
        }
    }

    pub async fn run(&self, call: Call) -> Result<(), SlError> {
        match self.api() {
            Ok(api) => api.run(call).await,
            Err(e) => Err(SlError::Transport {
                call: call.name(),
                message: e.message().to_owned(),
                connect: true,
            }),
        }
    }
}

impl SoftLayer {
    /// Sends a create that is not idempotent (`createObject`, `placeOrder`,
    /// `createSnapshot`), marked with a per-call token. When its answer is
    /// lost or unreadable, SoftLayer may have acted: `lookup` looks for the
    /// token first, and the create is sent again only when nothing carries
    /// it (at most three sends in all).
    pub async fn create_marked<T, F, Fut>(&self, call: Call, lookup: F) -> Result<T, SlError>
    where
        T: serde::de::DeserializeOwned,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, SlError>>,
    {
        let mut sends = 0;
        loop {
            sends += 1;
            let e = match self.send::<T>(call.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) if e.ambiguous() => e,
                Err(e) => return Err(e),
            };
            tracing::warn!("{e}: looking for what it may have made before sending it again");
            if let Some(found) = lookup().await? {
                tracing::info!("{}: found what the lost answer was about", call.name());
                return Ok(found);
            }
            if sends >= 3 {
                return Err(e);
            }
        }
    }
}

/// A cid as SoftLayer's integer id; `None` when it cannot be one (then the
/// object cannot exist in SoftLayer either).
pub fn numeric_id(cid: &str) -> Option<u64> {
    cid.trim().parse().ok()
}

/// Maps an API error to `not_found` when SoftLayer says the object is gone,
/// keeping the API's message; any other error stays a `CloudError`.
pub fn or_not_found(e: SlError, not_found: impl FnOnce() -> Error) -> Error {
    if e.is_not_found() {
        let nf = not_found();
        Error::new(nf.kind(), format!("{} ({})", nf.message(), e.message()))
    } else {
        Error::from(e)
    }
}

/// SoftLayer networks are VLANs the operator orders: no managed networks.
impl cpi::ManagedNetworks for SoftLayer {}
