//! The `cpi.json` the aws_cpi job renders, typed once and validated with
//! messages that name the key. Nothing here builds a client or reads
//! credentials: `info` is answered from this alone.

use agent::{AgentOptions, RegistryConfig};
use cpi::{Error, Result, Secret};
use serde::Deserialize;
use serde_json::Value;

/// The whole file: `{"cloud": {"plugin": "aws", "properties": {...}}}`.
#[derive(Debug, Deserialize)]
pub struct Config {
    pub cloud: CloudBlock,
    /// Some renders put `debug` at the top level; the job puts it under
    /// `cloud.properties`. Both are read.
    #[serde(default)]
    pub debug: Option<Debug>,
}

#[derive(Debug, Deserialize)]
pub struct CloudBlock {
    #[serde(default)]
    pub plugin: Option<String>,
    pub properties: Properties,
}

#[derive(Debug, Deserialize)]
pub struct Properties {
    pub aws: AwsOptions,
    #[serde(default)]
    pub agent: AgentOptions,
    #[serde(default)]
    pub registry: Option<RegistryConfig>,
    #[serde(default)]
    pub debug: Option<Debug>,
    #[serde(default)]
    pub stemcell: Option<StemcellDefaults>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Debug {
    #[serde(default)]
    pub cpi: Option<DebugCpi>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DebugCpi {
    #[serde(default)]
    pub api_version: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StemcellDefaults {
    #[serde(default)]
    pub kernel_id: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsSource {
    #[default]
    Static,
    EnvOrProfile,
}

/// `cloud.properties.aws`, with every key the job renders (nulls included).
#[derive(Debug, Deserialize)]
pub struct AwsOptions {
    #[serde(default, deserialize_with = "null_default")]
    pub credentials_source: CredentialsSource,
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    #[serde(default)]
    pub session_token: Option<Secret>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub default_iam_instance_profile: Option<String>,
    #[serde(default)]
    pub default_key_name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub default_security_groups: Vec<String>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default, deserialize_with = "null_default")]
    pub encrypted: bool,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    #[serde(default)]
    pub metadata_options: Option<Value>,
    #[serde(default, deserialize_with = "null_default")]
    pub dualstack: bool,
    #[serde(default)]
    pub enable_describe_instance_types: Option<bool>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub ec2_endpoint: Option<String>,
    /// Ours: the EBS direct API endpoint (stemcell import), for tests.
    #[serde(default)]
    pub ebs_endpoint: Option<String>,
    /// Classic ELB and ELBv2 (the incumbent points both at it).
    #[serde(default)]
    pub elb_endpoint: Option<String>,
    #[serde(default)]
    pub fast_path_delete: Option<Value>,
}

fn null_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> std::result::Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The job's default, kept when `debug.cpi.api_version` is absent.
pub const DEFAULT_API_VERSION: u32 = 3;
/// The highest version this CPI speaks.
pub const MAX_API_VERSION: u32 = 3;

impl Config {
    pub fn api_version(&self) -> u32 {
        let from = |d: &Option<Debug>| {
            d.as_ref()
                .and_then(|d| d.cpi.as_ref())
                .and_then(|c| c.api_version)
        };
        from(&self.cloud.properties.debug)
            .or_else(|| from(&self.debug))
            .unwrap_or(DEFAULT_API_VERSION)
            .clamp(1, MAX_API_VERSION)
    }

    pub fn aws(&self) -> &AwsOptions {
        &self.cloud.properties.aws
    }

    /// The checks `config.rb` makes, once, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        let aws = self.aws();
        const P: &str = "cloud.properties.aws";
        if let Some(plugin) = &self.cloud.plugin {
            if plugin != "aws" {
                return Err(Error::cpi(format!(
                    "cloud.plugin: expected 'aws', got '{plugin}'"
                )));
            }
        }
        match &aws.region {
            Some(r) if !valid_region(r) => {
                return Err(Error::cpi(format!(
                    "{P}.region: '{r}' is not an AWS region name (like us-east-1)"
                )))
            }
            None if aws.ec2_endpoint.is_none() => {
                return Err(Error::cpi(format!(
                    "{P}.region: missing (needed unless {P}.ec2_endpoint is set)"
                )))
            }
            _ => {}
        }
        if let Some(id) = self
            .cloud
            .properties
            .stemcell
            .as_ref()
            .and_then(|s| s.kernel_id.as_ref())
        {
            return Err(Error::cpi(format!(
                "cloud.properties.stemcell.kernel_id (job property aws.stemcell.kernel_id): '{id}' not supported by cpi-aws, which boots hvm stemcells only; remove it"
            )));
        }
        let has_key = aws.access_key_id.as_deref().is_some_and(|k| !k.is_empty());
        let has_secret = aws
            .secret_access_key
            .as_ref()
            .is_some_and(|k| !k.is_empty());
        match aws.credentials_source {
            CredentialsSource::Static => {
                if !has_key {
                    return Err(Error::cpi(format!(
                        "{P}.access_key_id: missing (required with credentials_source 'static')"
                    )));
                }
                if !has_secret {
                    return Err(Error::cpi(format!(
                        "{P}.secret_access_key: missing (required with credentials_source 'static')"
                    )));
                }
            }
            CredentialsSource::EnvOrProfile => {
                if has_key || has_secret {
                    return Err(Error::cpi(format!(
                        "{P}.access_key_id/secret_access_key: must not be set with credentials_source 'env_or_profile'"
                    )));
                }
            }
        }
        for (key, value) in [
            ("ec2_endpoint", &aws.ec2_endpoint),
            ("ebs_endpoint", &aws.ebs_endpoint),
            ("elb_endpoint", &aws.elb_endpoint),
        ] {
            if let Some(v) = value {
                if v.trim().is_empty() || v.contains(char::is_whitespace) {
                    return Err(Error::cpi(format!(
                        "{P}.{key}: '{v}' is not an endpoint URL"
                    )));
                }
            }
        }
        if let Some(reg) = &self.cloud.properties.registry {
            if reg.endpoint.is_some() || reg.host.is_some() {
                reg.resolve("cloud.properties.registry")?;
            }
        }
        Ok(())
    }

    /// The region to sign for: the configured one, else the one in the
    /// endpoint's host name, else us-east-1 (endpoint-only configs).
    pub fn region(&self) -> String {
        let aws = self.aws();
        aws.region.clone().unwrap_or_else(|| {
            aws.ec2_endpoint
                .as_deref()
                .and_then(|e| e.split('.').nth(1))
                .filter(|r| valid_region(r))
                .unwrap_or("us-east-1")
                .to_owned()
        })
    }
}

/// `xx-name-N` style names (us-east-1, ap-southeast-2, us-gov-west-1, cn-north-1).
fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
}

/// Endpoint with `https://` prepended when it has no scheme, as the Ruby CPI does.
pub fn endpoint_url(e: &str) -> String {
    if e.contains("://") {
        e.trim_end_matches('/').to_owned()
    } else {
        format!("https://{}", e.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Config {
        cpi::config::parse::<Config>(v).unwrap().config
    }

    #[test]
    fn regions() {
        assert!(valid_region("us-east-1"));
        assert!(valid_region("us-gov-west-1"));
        assert!(!valid_region("mars"));
        assert!(!valid_region("US-EAST-1"));
        assert!(!valid_region("us-east"));
    }

    #[test]
    fn rendered_job_config_parses_with_nulls() {
        let c = parse(json!({"cloud": {"plugin": "aws", "properties": {
            "aws": {"credentials_source": "static", "access_key_id": "AKIA", "secret_access_key": "s3cr3t-key",
                    "session_token": null, "role_arn": null, "default_iam_instance_profile": null,
                    "default_key_name": "bosh", "default_security_groups": ["bosh"], "max_retries": 8,
                    "encrypted": false, "kms_key_arn": null, "metadata_options": null, "dualstack": false,
                    "enable_describe_instance_types": true, "region": "us-east-1"},
            "agent": {"ntp": ["0.pool.ntp.org"], "mbus": "https://mbus:p@0.0.0.0:6868"},
            "debug": {"cpi": {"api_version": 2}}}}}));
        c.validate().unwrap();
        assert_eq!(c.api_version(), 2);
    }

    #[test]
    fn static_without_keys_names_the_key() {
        let c = parse(
            json!({"cloud": {"properties": {"aws": {"region": "us-east-1", "access_key_id": "AKIA"}}}}),
        );
        let e = c.validate().unwrap_err();
        assert!(
            e.message()
                .contains("cloud.properties.aws.secret_access_key"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn endpoint_gets_a_scheme() {
        assert_eq!(endpoint_url("ec2.example.com"), "https://ec2.example.com");
        assert_eq!(
            endpoint_url("http://127.0.0.1:5000/"),
            "http://127.0.0.1:5000"
        );
    }
}
