//! The EC2 and EBS clients, built on first use (never for `info` or config
//! parsing): credentials from the config (`static`) or the default chain
//! (`env_or_profile`: environment, profile, ECS, instance profile over
//! IMDSv2), optionally assuming `role_arn`; endpoints overridable for tests.
//! The load balancer clients are made from the same shared config only when
//! a VM names `elbs` or `lb_target_groups`.

use crate::config::{endpoint_url, Config, CredentialsSource};
// The alias names the type aws-config takes; its new home (aws-runtime) is
// not a dependency of ours.
#[allow(deprecated)]
use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use cpi::{Error, Result};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub ebs: aws_sdk_ebs::Client,
    pub region: String,
    /// What every client is built from (HTTP client, TLS, credentials,
    /// retries and timeouts), for the ones made later.
    shared: SdkConfig,
    /// `aws.elb_endpoint`: the incumbent points both ELB APIs at it.
    elb_endpoint: Option<String>,
    elb: OnceLock<aws_sdk_elasticloadbalancing::Client>,
    elbv2: OnceLock<aws_sdk_elasticloadbalancingv2::Client>,
}

impl Clients {
    /// Classic ELB, built on first use.
    pub fn elb(&self) -> &aws_sdk_elasticloadbalancing::Client {
        self.elb.get_or_init(|| {
            let mut b = aws_sdk_elasticloadbalancing::config::Builder::from(&self.shared);
            if let Some(e) = &self.elb_endpoint {
                b = b.endpoint_url(endpoint_url(e));
            }
            aws_sdk_elasticloadbalancing::Client::from_conf(b.build())
        })
    }

    /// ELBv2 (ALB/NLB target groups), built on first use.
    pub fn elbv2(&self) -> &aws_sdk_elasticloadbalancingv2::Client {
        self.elbv2.get_or_init(|| {
            let mut b = aws_sdk_elasticloadbalancingv2::config::Builder::from(&self.shared);
            if let Some(e) = &self.elb_endpoint {
                b = b.endpoint_url(endpoint_url(e));
            }
            aws_sdk_elasticloadbalancingv2::Client::from_conf(b.build())
        })
    }
}

/// The job's default for `aws.max_retries`.
const DEFAULT_MAX_RETRIES: u32 = 8;

/// `ca_bundle`: a PEM file of extra CA certificates to trust besides the
/// system's (the job exports `BOSH_CA_CERT_FILE`); an empty file adds none.
pub async fn build(config: &Config, ca_bundle: Option<&Path>) -> Result<Clients> {
    let aws = config.aws();
    let region = config.region();
    // The SDK's own retries are off: they would re-send creates that are
    // not idempotent after a lost answer, and multiply with the CPI's
    // waits. Every request is retried in one place instead
    // (`errors::call`, `create::once`), `max_retries` times for server
    // errors and dropped connections, to a deadline for throttling.
    crate::errors::set_max_retries(aws.max_retries.unwrap_or(DEFAULT_MAX_RETRIES));
    let retry = RetryConfig::disabled();
    // Nobody times a CPI call out: bound every attempt ourselves.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .operation_attempt_timeout(Duration::from_secs(120))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts)
        .use_dual_stack(aws.dualstack);
    let mut tls = tls_trusting(ca_bundle)?;
    if plain_http_only(config) {
        // Every request goes to an http:// endpoint (a test cloud): no
        // trust roots, so that the system store (~290 PEM files, ~3.6 ms)
        // is not loaded for a connection that never uses it.
        tls = Some(
            TlsContext::builder()
                .with_trust_store(TrustStore::empty())
                .build()
                .map_err(|e| Error::cpi(format!("setting up the HTTP client: {e}")))?,
        );
    }
    if let Some(context) = tls {
        // Built as the SDK builds its default client, so that it honours
        // HTTP(S)_PROXY and NO_PROXY (the job exports env.*_proxy) as that
        // one does.
        loader = loader.http_client(
            aws_smithy_http_client::Builder::new().build_with_connector_fn(
                move |settings, components| {
                    let mut b = aws_smithy_http_client::ConnectorBuilder::default()
                        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                        .tls_context(context.clone());
                    b.set_connector_settings(settings.cloned());
                    if let Some(components) = components {
                        b.set_sleep_impl(components.sleep_impl());
                    }
                    b.set_proxy_config(
                        Some(aws_smithy_http_client::proxy::ProxyConfig::from_env()),
                    );
                    b.build()
                },
            ),
        );
    }
    if aws.credentials_source == CredentialsSource::Static {
        let key = aws.access_key_id.clone().unwrap_or_default();
        let secret = aws
            .secret_access_key
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default();
        let token = aws.session_token.as_ref().map(|s| s.expose().to_owned());
        loader = loader
            .credentials_provider(Credentials::new(key, secret, token, None, "cpi.json"))
            // The keys and the region are in the config: nothing to find in
            // ~/.aws/config or ~/.aws/credentials, and no reason to read
            // them (with a region and keys given, no IMDS probe is made
            // either). `env_or_profile` keeps the whole default chain.
            .profile_files(
                #[allow(deprecated)]
                // An empty in-memory file: the set may not be empty.
                ProfileFiles::builder()
                    .include_default_config_file(false)
                    .include_default_credentials_file(false)
                    .with_contents(ProfileFileKind::Config, "")
                    .build(),
            );
    }
    let mut shared: SdkConfig = loader.load().await;
    if let Some(role) = aws.role_arn.as_deref().filter(|r| !r.is_empty()) {
        let provider = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("bosh-aws-cpi")
            .configure(&shared)
            .build()
            .await;
        shared = shared
            .into_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(provider),
            )
            .build();
    }

    let mut ec2 = aws_sdk_ec2::config::Builder::from(&shared);
    if let Some(e) = &aws.ec2_endpoint {
        ec2 = ec2.endpoint_url(endpoint_url(e));
    }
    let mut ebs = aws_sdk_ebs::config::Builder::from(&shared);
    if let Some(e) = &aws.ebs_endpoint {
        ebs = ebs.endpoint_url(endpoint_url(e));
    }
    Ok(Clients {
        ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
        ebs: aws_sdk_ebs::Client::from_conf(ebs.build()),
        region,
        shared,
        elb_endpoint: aws.elb_endpoint.clone(),
        elb: OnceLock::new(),
        elbv2: OnceLock::new(),
    })
}

/// Whether no request of the call can go to an https endpoint: static keys
/// (no credential provider that calls out), no role to assume (STS), and
/// both the EC2 and the EBS endpoint given as http://.
fn plain_http_only(config: &Config) -> bool {
    let aws = config.aws();
    let http = |e: &Option<String>| {
        e.as_deref().is_some_and(|e| {
            endpoint_url(e)
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
        })
    };
    aws.credentials_source == CredentialsSource::Static
        && aws.role_arn.as_deref().is_none_or(str::is_empty)
        && http(&aws.ec2_endpoint)
        && http(&aws.ebs_endpoint)
}

/// TLS that also trusts the certificates in `ca_bundle`.
fn tls_trusting(ca_bundle: Option<&Path>) -> Result<Option<TlsContext>> {
    let Some(path) = ca_bundle else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| {
        Error::cpi(format!(
            "reading the CA certificate bundle {}: {e}",
            path.display()
        ))
    })?;
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    TlsContext::builder()
        .with_trust_store(TrustStore::default().with_pem_certificate(pem))
        .build()
        .map(Some)
        .map_err(|e| Error::cpi(format!("CA certificate bundle {}: {e}", path.display())))
}
