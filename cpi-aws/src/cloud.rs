//! The AWS cloud for one call: config, context, and clients made on first
//! use. The capability traits delegate to one module each.

use crate::clients::{self, Clients};
use crate::config::Config;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use cpi::{CallContext, Info, Result};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

pub struct Aws {
    pub(crate) config: Config,
    pub(crate) ctx: CallContext,
    clients: OnceCell<Clients>,
}

impl cpi::Cloud for Aws {
    const NAME: &'static str = "cpi-aws";
    type Config = Config;

    fn info(config: &Config) -> Info {
        Info {
            stemcell_formats: vec!["aws-raw".into(), "aws-light".into()],
            api_version: config.api_version(),
        }
    }

    /// As the Ruby CPI does: the director's `cpi` config properties go over
    /// `cloud.properties.aws`.
    fn merge_context(config: &mut Value, overrides: &Map<String, Value>) {
        cpi::config::merge_at(config, &["cloud", "properties", "aws"], overrides);
    }

    fn new(config: Config, ctx: CallContext) -> Result<Self> {
        config.validate()?;
        Ok(Aws {
            config,
            ctx,
            clients: OnceCell::new(),
        })
    }
}

impl Aws {
    async fn clients(&self) -> Result<&Clients> {
        // The job's wrapper exports the operator's CA bundle; Go-style jobs
        // pass it as the second argument.
        let ca_bundle = self
            .ctx
            .ca_cert_path
            .clone()
            .or_else(|| std::env::var_os("BOSH_CA_CERT_FILE").map(std::path::PathBuf::from));
        self.clients
            .get_or_try_init(|| clients::build(&self.config, ca_bundle.as_deref()))
            .await
    }

    pub(crate) async fn ec2(&self) -> Result<&aws_sdk_ec2::Client> {
        Ok(&self.clients().await?.ec2)
    }

    pub(crate) async fn ebs(&self) -> Result<&aws_sdk_ebs::Client> {
        Ok(&self.clients().await?.ebs)
    }

    pub(crate) async fn elb(&self) -> Result<&aws_sdk_elasticloadbalancing::Client> {
        Ok(self.clients().await?.elb())
    }

    pub(crate) async fn elbv2(&self) -> Result<&aws_sdk_elasticloadbalancingv2::Client> {
        Ok(self.clients().await?.elbv2())
    }

    pub(crate) fn region(&self) -> String {
        self.config.region()
    }
}

/// EC2 tags from key/value pairs.
pub(crate) fn tags(pairs: &[(String, String)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// A tag specification for a resource created with tags (none when empty).
pub(crate) fn tag_spec(kind: ResourceType, pairs: &[(String, String)]) -> Option<TagSpecification> {
    (!pairs.is_empty()).then(|| {
        TagSpecification::builder()
            .resource_type(kind)
            .set_tags(Some(tags(pairs)))
            .build()
    })
}

impl cpi::Snapshots for Aws {
    async fn snapshot_disk(
        &self,
        disk: cpi::DiskCid,
        metadata: cpi::Metadata,
    ) -> Result<cpi::SnapshotCid> {
        crate::snapshot::snapshot_disk(self, disk, metadata).await
    }
    async fn delete_snapshot(&self, cid: cpi::SnapshotCid) -> Result<()> {
        crate::snapshot::delete_snapshot(self, cid).await
    }
}

impl cpi::ManagedNetworks for Aws {}
