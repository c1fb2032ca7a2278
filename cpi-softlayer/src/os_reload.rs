//! The Go CPI's OS reload (`softlayer.disable_os_reload` false, its
//! default): a `create_vm` whose dynamic network carries an `ip` reloads
//! the account's guest that has that IP with the stemcell, instead of
//! ordering a new one (how create-env reuses a director guest ordered
//! beforehand). The guest is the operator's: a failure leaves it (the
//! director's retry reloads it again), never cancels it.

use crate::client::Call;
use crate::cloud::{SoftLayer, GUEST};
use crate::types::{lenient_u64, Guest, Named};
use agent::{Delivery, RegistryClient};
use cpi::wait;
use cpi::{CreateVm, CreatedVm, Error, Result, VmCid};
use serde::Deserialize;
use serde_json::json;

/// What the reload needs from the VM's cloud_properties.
pub struct Reload<'a> {
    pub network: &'a str,
    pub ip: &'a str,
    pub stemcell: u64,
    pub hostname: String,
    pub domain: &'a str,
    pub datacenter: &'a str,
    pub cpu: Option<u64>,
    pub memory: Option<u64>,
    pub ssh_keys: Vec<u64>,
    pub tags: &'a [String],
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Existing {
    #[serde(default, deserialize_with = "lenient_u64")]
    id: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    max_cpu: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    max_memory: Option<u64>,
    #[serde(default)]
    provision_date: Option<String>,
    #[serde(default)]
    datacenter: Option<Named>,
}

/// RFC 1918: the guest's private (backend) address, else its public one.
fn private(ip: &str) -> bool {
    match ip.parse::<std::net::Ipv4Addr>() {
        Ok(a) => a.is_private(),
        Err(_) => false,
    }
}

impl SoftLayer {
    pub async fn os_reload(
        &self,
        args: &CreateVm,
        r: Reload<'_>,
        delivery: Delivery,
        registry: Option<&RegistryClient>,
    ) -> Result<CreatedVm> {
        let key = format!("create_vm: networks.{}.ip", r.network);
        let field = if private(r.ip) {
            "primaryBackendIpAddress"
        } else {
            "primaryIpAddress"
        };
        let found: Vec<Existing> = self
            .send(
                Call::get("SoftLayer_Account", None, "getVirtualGuests")
                    .mask("id,maxCpu,maxMemory,provisionDate,datacenter[name]")
                    .filter(json!({"virtualGuests": {field: {"operation": r.ip}}})),
            )
            .await
            .map_err(|e| Error::from(e).context(format!("{key}: finding the guest to reload")))?;
        let g = match found.as_slice() {
            [g] => g,
            [] => {
                return Err(Error::cloud(format!(
                    "{key}: no guest of the account has IP {} to reload (softlayer.disable_os_reload: true orders a new guest instead)",
                    r.ip
                )))
            }
            _ => {
                return Err(Error::cloud(format!(
                    "{key}: {} guests have IP {}",
                    found.len(),
                    r.ip
                )))
            }
        };
        let id = g
            .id
            .ok_or_else(|| Error::cloud(format!("{key}: the guest with IP {} has no id", r.ip)))?;
        let dc = g.datacenter.as_ref().and_then(|d| d.name.as_deref());
        if dc.is_some_and(|dc| dc != r.datacenter) {
            return Err(Error::cloud(format!(
                "create_vm: cloud_properties.datacenter: '{}', but guest {id} with IP {} is in {}",
                r.datacenter,
                r.ip,
                dc.unwrap_or_default()
            )));
        }
        // The Go CPI upgraded the guest to the asked size; a reload here
        // keeps it, so a different size is refused by name.
        for (key, want, have) in [
            ("cpu", r.cpu, g.max_cpu),
            ("memory", r.memory, g.max_memory),
        ] {
            if let (Some(w), Some(h)) = (want, have) {
                if w != h {
                    return Err(Error::cloud(format!(
                        "create_vm: cloud_properties.{key}: {w}, but guest {id} being reloaded has {h} (an OS reload keeps the guest's size)"
                    )));
                }
            }
        }
        tracing::info!("create_vm: reloading the OS of guest {id} (IP {})", r.ip);
        match self.reload(id, args, &r, g.provision_date.as_deref(), delivery, registry).await {
            Ok(vm) => Ok(vm),
            Err(e) => Err(Error::vm_creation_failed(
                format!(
                    "create_vm: OS reload of guest {id}: {} (the guest is kept; a retry reloads it again)",
                    e.message()
                ),
                true,
            )),
        }
    }

    async fn reload(
        &self,
        id: u64,
        args: &CreateVm,
        r: &Reload<'_>,
        before: Option<&str>,
        delivery: Delivery,
        registry: Option<&RegistryClient>,
    ) -> Result<CreatedVm> {
        let cid = VmCid::new(id.to_string());
        if let Some(reg) = registry {
            reg.delete(&cid).await?;
        }
        self.hand_settings(id, args, delivery, registry).await?;
        // The reload is refused while another transaction runs.
        let waits = self.config.waits;
        wait::wait_for(
            format!("guest {id} to finish its transaction before the reload"),
            waits.poll(waits.vm_ready),
            || async {
                let g: Guest = self
                    .send(Call::get(GUEST, Some(id), "getObject").mask("id,activeTransaction[id]"))
                    .await?;
                Ok(g.active_transaction.is_none().then_some(()))
            },
        )
        .await?;
        let mut config = json!({"imageTemplateId": r.stemcell});
        if !r.ssh_keys.is_empty() {
            config["sshKeyIds"] = json!(r.ssh_keys);
        }
        let sent = self
            .run(Call::post(
                GUEST,
                Some(id),
                "reloadOperatingSystem",
                vec![json!("FORCE"), config],
            ))
            .await;
        match sent {
            Ok(()) => {}
            // Its answer lost: the reload started when the guest is busy
            // or its provision date changed; else it never happened.
            Err(e) if e.ambiguous() => {
                let g: Guest = self
                    .send(
                        Call::get(GUEST, Some(id), "getObject")
                            .mask("id,provisionDate,activeTransaction[id]"),
                    )
                    .await?;
                if g.active_transaction.is_none() && g.provision_date.as_deref() == before {
                    return Err(e.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
        let guest = self.wait_provisioned(id, before).await?;
        self.run(Call::edit(
            GUEST,
            id,
            json!({"hostname": r.hostname, "domain": r.domain}),
        ))
        .await?;
        if !r.tags.is_empty() {
            let tags = r.tags.join(",");
            self.run(Call::post(GUEST, Some(id), "setTags", vec![json!(tags)]).idempotent())
                .await?;
        }
        Ok(CreatedVm {
            cid,
            networks: crate::network::answered(&args.networks, &guest),
        })
    }
}
