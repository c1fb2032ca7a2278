//! The warden cloud: its config, `info`, and the pieces every method uses.

use crate::config::Config;
use crate::garden::{Endpoint, Garden};
use cpi::{CallContext, Cloud, Info, Result};

pub struct Warden {
    pub config: Config,
    pub ctx: CallContext,
    /// Building it touches no network: connections are made per request.
    pub garden: Garden,
}

impl Cloud for Warden {
    const NAME: &'static str = "cpi-warden";
    type Config = Config;

    fn info(_config: &Config) -> Info {
        Info {
            stemcell_formats: vec!["warden-tar".into(), "general-tar".into()],
            api_version: 2,
        }
    }

    fn new(config: Config, ctx: CallContext) -> Result<Self> {
        config.validate()?;
        let endpoint = match config.warden.connect_network.as_str() {
            "unix" => Endpoint::Unix(config.warden.connect_address.clone().into()),
            _ => Endpoint::Tcp(config.warden.connect_address.clone()),
        };
        Ok(Warden {
            config,
            ctx,
            garden: Garden::new(endpoint),
        })
    }
}

impl cpi::Snapshots for Warden {}
impl cpi::ManagedNetworks for Warden {}
