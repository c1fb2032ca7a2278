//! `softlayer.ssh_public_key`: the Go CPI added the key to the account on
//! every create_vm (label `bosh_cpi`) and never removed it. Here it is added
//! once: the account's key with the same text (or the configured
//! `ssh_public_key_fingerprint`) is used when there is one, so a lost
//! answer or the next create_vm never adds it twice.

use crate::client::Call;
use crate::cloud::SoftLayer;
use crate::types::lenient_u64;
use cpi::{Error, Result};
use serde::Deserialize;
use serde_json::json;

pub const LABEL: &str = "bosh_cpi";

#[derive(Deserialize)]
struct Key {
    #[serde(default, deserialize_with = "lenient_u64")]
    id: Option<u64>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

impl SoftLayer {
    /// The id of the account's copy of the configured key, added if missing.
    pub async fn account_ssh_key(&self) -> Result<Option<u64>> {
        let Some(public) = self.config.ssh_public_key.as_deref() else {
            return Ok(None);
        };
        let what = "cloud.properties.softlayer.ssh_public_key";
        let find = || async {
            let keys: Vec<Key> = self
                .send(Call::get("SoftLayer_Account", None, "getSshKeys").mask("id,key,fingerprint"))
                .await?;
            let fp = self.config.ssh_public_key_fingerprint.as_deref();
            Ok(keys.into_iter().find_map(|k| {
                let same = k.key.as_deref().map(str::trim) == Some(public.trim())
                    || (fp.is_some() && k.fingerprint.as_deref() == fp);
                if same {
                    k.id.map(|id| Key {
                        id: Some(id),
                        key: None,
                        fingerprint: None,
                    })
                } else {
                    None
                }
            }))
        };
        if let Some(k) = find()
            .await
            .map_err(|e: crate::error::SlError| Error::from(e).context(what))?
        {
            return Ok(k.id);
        }
        let created: Key = self
            .create_marked(
                Call::post(
                    "SoftLayer_Security_Ssh_Key",
                    None,
                    "createObject",
                    vec![json!({"key": public.trim(), "label": LABEL})],
                )
                .mask("id"),
                find,
            )
            .await
            .map_err(|e| {
                Error::from(e).context(format!("{what}: adding the key to the account"))
            })?;
        created
            .id
            .map(Some)
            .ok_or_else(|| Error::cloud(format!("{what}: createObject answered no id")))
    }
}
