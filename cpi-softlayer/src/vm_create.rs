//! `create_vm`: order the guest, hand it its agent settings, wait (polls
//! with backoff and a deadline) until it is provisioned. Anything failing
//! after `createObject` cancels the guest and answers `VMCreationFailed`.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, GUEST, TEMPLATE};
use crate::error::SlError;
use crate::network::{self, Placement};
use crate::types::{lenient_u64, Guest, Template};
use agent::{Delivery, Disks, RegistryClient, Settings};
use base64::Engine;
use cpi::wait::{self, Verdict};
use cpi::{CreateVm, CreatedVm, Error, ErrorKind, Result, VmCid};
use serde::Deserialize;
use serde_json::{json, Value};

/// A VM's `cloud_properties`, with the Go CPI's names and defaults.
#[derive(Debug, Deserialize)]
struct VmProps {
    hostname_prefix: String,
    #[serde(default = "default_domain")]
    domain: String,
    datacenter: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    cpu: Option<u64>,
    /// MB.
    #[serde(default, deserialize_with = "lenient_u64")]
    memory: Option<u64>,
    #[serde(default)]
    flavor_key_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    max_network_speed: Option<u64>,
    #[serde(default)]
    hourly_billing_flag: bool,
    #[serde(default)]
    local_disk_flag: bool,
    #[serde(default)]
    dedicated_account_host_only_flag: bool,
    #[serde(default, deserialize_with = "lenient_u64")]
    dedicated_host_id: Option<u64>,
    /// GB; SoftLayer sizes the guest's second disk from it.
    #[serde(default, deserialize_with = "lenient_u64")]
    ephemeral_disk_size: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    ssh_key: Option<u64>,
    #[serde(default)]
    ssh_keys: Vec<u64>,
    #[serde(default)]
    tags: Vec<String>,
    /// create-env (`bosh-deployment`'s softlayer/cpi.yml): the hostname is
    /// `hostname_prefix` itself, as the Go CPI named it.
    #[serde(default)]
    deployed_by_boshcli: bool,
    /// The Go CPI set it itself from `hostname_prefix`: refused.
    #[serde(default)]
    hostname: Option<Value>,
}

impl VmProps {
    /// The Go CPI's rules, each refusal naming its keys.
    fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::cloud(format!("create_vm: cloud_properties.{m}")));
        if self.hostname_prefix.trim().is_empty() {
            return bad("hostname_prefix: must not be empty");
        }
        if self.datacenter.trim().is_empty() {
            return bad("datacenter: must not be empty");
        }
        if self.hostname.is_some() {
            return bad("hostname: not supported: the hostname is made from hostname_prefix");
        }
        if self.flavor_key_name.is_some() && (self.cpu.is_some() || self.memory.is_some()) {
            return bad("flavor_key_name: cannot be set with cpu or memory");
        }
        if self.dedicated_account_host_only_flag && self.dedicated_host_id.is_some() {
            return bad("dedicated_host_id: cannot be set with dedicated_account_host_only_flag (a dedicated host is already the account's alone)");
        }
        if self.max_network_speed == Some(0) {
            return bad("max_network_speed: must be a speed in Mbps (10, 100, 1000, 10000)");
        }
        Ok(())
    }
}

fn default_domain() -> String {
    "softlayer.com".into()
}

impl SoftLayer {
    pub async fn create(&self, mut args: CreateVm) -> Result<CreatedVm> {
        if let Some(p) = &self.config.vcap_password {
            let bosh = args.env.entry("bosh").or_insert_with(|| json!({}));
            if let Some(b) = bosh.as_object_mut() {
                if b.get("password").is_none_or(Value::is_null) {
                    b.insert("password".into(), json!(p.expose()));
                }
            }
        }
        let props: VmProps =
            crate::props::read("create_vm: cloud_properties", &args.cloud_properties)?;
        props.check()?;
        let delivery = Delivery::choose(&self.ctx);
        let registry = match (delivery, &self.config.registry) {
            (Delivery::Registry, Some(r)) => Some(RegistryClient::new(r, "cloud.properties.registry")?),
            (Delivery::Registry, None) => {
                return Err(Error::cpi(
                    "create_vm: stemcell API v1 needs the registry, but cloud.properties.registry is not configured",
                ))
            }
            (Delivery::UserData, _) => None,
        };
        let image = self.template_gid(&args.stemcell_cid).await?;
        let mut props = props;
        if let Some(key) = self.account_ssh_key().await? {
            props.ssh_keys.push(key);
        }
        let reload_ip = args
            .networks
            .iter()
            .find(|(_, n)| n.kind == cpi::NetworkType::Dynamic && n.ip.is_some());
        if let (false, Some((network, net))) = (self.config.disable_os_reload, reload_ip) {
            let reload = crate::os_reload::Reload {
                network,
                ip: net.ip.as_deref().unwrap_or_default(),
                stemcell: numeric_id(args.stemcell_cid.as_str()).unwrap_or_default(),
                hostname: hostname_for(&props),
                domain: &props.domain,
                datacenter: &props.datacenter,
                cpu: props.cpu,
                memory: props.memory,
                ssh_keys: props
                    .ssh_key
                    .into_iter()
                    .chain(props.ssh_keys.iter().copied())
                    .collect(),
                tags: &props.tags,
            };
            return self
                .os_reload(&args, reload, delivery, registry.as_ref())
                .await;
        }
        let placement = network::placement(self, &args.networks, &props.datacenter).await?;
        // The hostname is this call's token: a createObject whose answer is
        // lost is looked up by it before it is sent again.
        // With deployed_by_boshcli the hostname is the prefix alone and not
        // a token: guests that had it before are left out of the lookup.
        let (hostname, existing) = if props.deployed_by_boshcli {
            let name = props.hostname_prefix.trim().to_owned();
            let before = self.guests_by_hostname(&name).await?;
            (name, before)
        } else {
            let token = &uuid::Uuid::new_v4().simple().to_string()[..10];
            (
                format!("{}-{token}", props.hostname_prefix.trim()),
                Vec::new(),
            )
        };
        let template = guest_template(&props, &hostname, &image, &placement);

        let created: Guest = self
            .create_marked(
                Call::post(GUEST, None, "createObject", vec![template]).mask("id"),
                || async {
                    let found = self.guests_by_hostname(&hostname).await?;
                    Ok(found.into_iter().find(|id| !existing.contains(id)).map(Guest::with_id))
                },
            )
            .await
            .map_err(|e| {
                Error::from(e).context(format!(
                    "create_vm: creating the guest (cloud_properties.datacenter '{}', hostname_prefix '{}')",
                    props.datacenter, props.hostname_prefix
                ))
            })?;
        let id = created
            .id
            .ok_or_else(|| Error::cloud("create_vm: createObject answered no guest id"))?;
        tracing::info!("create_vm: guest {id} ordered in {}", props.datacenter);

        match self
            .finish(id, &args, &props, delivery, registry.as_ref(), &placement)
            .await
        {
            Ok(vm) => Ok(vm),
            Err(e) => {
                tracing::warn!(
                    "create_vm: guest {id} failed ({}): cancelling it",
                    e.message()
                );
                let cleanup = self.cancel_guest(id).await;
                if let Some(r) = &registry {
                    let _ = r.delete(&VmCid::new(id.to_string())).await;
                }
                let mut message = format!("create_vm: guest {id}: {}", e.message());
                if let Err(c) = cleanup {
                    message.push_str(&format!(
                        " (cancelling the guest failed too: {})",
                        c.message()
                    ));
                }
                Err(Error::vm_creation_failed(message, true))
            }
        }
    }

    /// The image template's global identifier, which `createObject` takes.
    async fn template_gid(&self, stemcell: &cpi::StemcellCid) -> Result<String> {
        let id = numeric_id(stemcell.as_str()).ok_or_else(|| {
            Error::cpi(format!(
                "create_vm: stemcell cid '{stemcell}' is not a SoftLayer image template id"
            ))
        })?;
        let t: Template = self
            .send(Call::get(TEMPLATE, Some(id), "getObject").mask("id,globalIdentifier"))
            .await
            .map_err(|e| {
                or_not_found(e, || {
                    Error::cloud(format!(
                        "create_vm: stemcell {id}: image template does not exist"
                    ))
                })
            })?;
        t.global_identifier
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                Error::cloud(format!(
                    "create_vm: image template {id} has no global identifier"
                ))
            })
    }

    /// Everything after `createObject`: settings, the wait, the answer.
    async fn finish(
        &self,
        id: u64,
        args: &CreateVm,
        props: &VmProps,
        delivery: Delivery,
        registry: Option<&RegistryClient>,
        placement: &Placement,
    ) -> Result<CreatedVm> {
        let cid = VmCid::new(id.to_string());
        self.hand_settings(id, args, delivery, registry).await?;
        let guest = self.wait_provisioned(id, None).await?;
        if let (Some(want), Some(got)) = (&placement.private_ip, &guest.primary_backend_ip_address)
        {
            if want != got {
                return Err(Error::cloud(format!(
                    "SoftLayer gave the guest {got}, not the manual network's IP {want}"
                )));
            }
        }
        if !props.tags.is_empty() {
            let tags = props.tags.join(",");
            self.run(Call::post(GUEST, Some(id), "setTags", vec![json!(tags)]).idempotent())
                .await?;
        }
        Ok(CreatedVm {
            cid,
            networks: network::answered(&args.networks, &guest),
        })
    }

    /// The agent settings for guest `id`: in the registry (stemcell API
    /// v1) and in its user metadata (the whole settings, or where the
    /// registry is).
    pub(crate) async fn hand_settings(
        &self,
        id: u64,
        args: &CreateVm,
        delivery: Delivery,
        registry: Option<&RegistryClient>,
    ) -> Result<()> {
        let cid = VmCid::new(id.to_string());
        let disks = Disks {
            system: "/dev/xvda".into(),
            ephemeral: Some(json!("/dev/xvdc")),
            ..Disks::default()
        };
        let settings = Settings::new(&self.config.agent, args, cid.as_str(), disks);
        if let Some(r) = registry {
            r.put(&cid, &settings)
                .await
                .map_err(|e| e.context("writing the agent settings to the registry"))?;
        }
        let user_data = agent::user_data(&settings, delivery, self.config.registry.as_ref());
        let encoded =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user_data.to_string());
        // Right after createObject the guest may not be visible yet: retry
        // not-found and blocking answers within the API retry bound.
        wait::retry(
            format!("setting the user metadata of guest {id}"),
            self.config.waits.api(),
            |e: &Error| {
                if e.message().contains("ObjectNotFound")
                    || e.message().contains("BlockingOperation")
                {
                    Verdict::Retry
                } else {
                    Verdict::Fail
                }
            },
            || async {
                self.run(
                    Call::post(GUEST, Some(id), "setUserMetadata", vec![json!([encoded])])
                        .idempotent(),
                )
                .await
                .map_err(Error::from)
            },
        )
        .await
    }

    /// Polls until the guest is provisioned, powered on and has no active
    /// transaction (and, after an OS reload, has a provision date other
    /// than `before`); a failed provisioning transaction ends the wait.
    pub(crate) async fn wait_provisioned(&self, id: u64, before: Option<&str>) -> Result<Guest> {
        let waits = self.config.waits;
        let mask = "id,provisionDate,powerState[keyName],activeTransaction[id,transactionStatus[name,friendlyName]],\
                    primaryBackendIpAddress,primaryBackendNetworkComponent[primaryIpAddress,macAddress,primarySubnet[netmask,gateway]]";
        wait::wait_for(
            format!("guest {id} to be provisioned"),
            waits.poll(waits.vm_ready),
            || async {
                let g: Guest = self
                    .send(Call::get(GUEST, Some(id), "getObject").mask(mask))
                    .await
                    .map_err(|e| {
                        or_not_found(e, || {
                            Error::cloud(format!("guest {id} disappeared while provisioning"))
                        })
                    })?;
                if let Some(tx) = &g.active_transaction {
                    let status = tx.status_name();
                    if status.contains("FAIL") || status.contains("ERROR") {
                        let friendly = tx
                            .transaction_status
                            .as_ref()
                            .and_then(|s| s.friendly_name.clone())
                            .unwrap_or_default();
                        return Err(Error::cloud(format!(
                            "provisioning failed: {status} {friendly}"
                        )));
                    }
                    tracing::info!("guest {id}: provisioning ({status})");
                    return Ok(None);
                }
                let running =
                    g.power_state.as_ref().and_then(|p| p.key_name.as_deref()) == Some("RUNNING");
                let new_date = before.is_none() || g.provision_date.as_deref() != before;
                if g.provision_date.is_some() && running && new_date {
                    tracing::info!("guest {id}: provisioned");
                    Ok(Some(g))
                } else {
                    tracing::info!("guest {id}: waiting for its provision date and power on");
                    Ok(None)
                }
            },
        )
        .await
    }

    /// The ids of the account's guests with this hostname.
    async fn guests_by_hostname(&self, hostname: &str) -> Result<Vec<u64>, SlError> {
        let found: Vec<crate::types::IdOnly> = self
            .send(
                Call::get("SoftLayer_Account", None, "getVirtualGuests")
                    .mask("id,hostname")
                    .filter(json!({"virtualGuests": {"hostname": {"operation": hostname}}})),
            )
            .await?;
        Ok(found.into_iter().filter_map(|g| g.id).collect())
    }

    /// Deletes a guest; one in a transaction that blocks deletion (a guest
    /// still provisioning) is cancelled through its billing item instead.
    /// Failures are tried again within `vm_delete`: a guest this CPI made
    /// must not be left because one request failed. Gone is success.
    pub async fn cancel_guest(&self, id: u64) -> Result<()> {
        let waits = self.config.waits;
        let result = wait::retry(
            format!("deleting guest {id}"),
            waits.poll(waits.vm_delete).attempts(8),
            |_: &Error| Verdict::Retry,
            || async {
                match self.run(Call::delete(GUEST, id)).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) if e.code().is_some_and(|c| c.contains("BlockingOperation")) => {
                        tracing::info!("guest {id}: {} : cancelling its billing item", e.message());
                        self.cancel_guest_billing(id).await
                    }
                    Err(e) => Err(Error::from(e)),
                }
            },
        )
        .await;
        result.map_err(|e| e.with_kind(ErrorKind::Cloud))
    }

    async fn cancel_guest_billing(&self, id: u64) -> Result<()> {
        let g: GuestBilling = match self
            .send(Call::get(GUEST, Some(id), "getObject").mask("id,billingItem[id]"))
            .await
        {
            Ok(g) => g,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(item) = g.billing_item.and_then(|b| b.id) else {
            return Err(Error::cloud(format!(
                "guest {id} is busy and shows no billing item to cancel"
            )));
        };
        match self
            .run(Call::get(
                "SoftLayer_Billing_Item",
                Some(item),
                "cancelService",
            ))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuestBilling {
    #[serde(default)]
    billing_item: Option<crate::types::IdOnly>,
}

/// `prefix-<10 hex>`: unique, so that it is the create's token; the prefix
/// alone for create-env (deployed_by_boshcli).
fn hostname_for(props: &VmProps) -> String {
    if props.deployed_by_boshcli {
        return props.hostname_prefix.trim().to_owned();
    }
    let token = &uuid::Uuid::new_v4().simple().to_string()[..10];
    format!("{}-{token}", props.hostname_prefix.trim())
}

fn guest_template(props: &VmProps, hostname: &str, image: &str, placement: &Placement) -> Value {
    let mut t = json!({
        "hostname": hostname,
        "domain": props.domain,
        "datacenter": {"name": props.datacenter},
        "blockDeviceTemplateGroup": {"globalIdentifier": image},
        "hourlyBillingFlag": props.hourly_billing_flag,
        "localDiskFlag": props.local_disk_flag,
        "dedicatedAccountHostOnlyFlag": props.dedicated_account_host_only_flag,
        "networkComponents": [{"maxSpeed": props.max_network_speed.unwrap_or(1000)}],
        "privateNetworkOnlyFlag": placement.private_vlan.is_some() && placement.public_vlan.is_none(),
    });
    match &props.flavor_key_name {
        Some(f) => t["supplementalCreateObjectOptions"] = json!({"flavorKeyName": f}),
        None => {
            t["startCpus"] = json!(props.cpu.unwrap_or(4));
            t["maxMemory"] = json!(props.memory.unwrap_or(8192));
        }
    }
    if let Some(v) = placement.private_vlan {
        t["primaryBackendNetworkComponent"] = json!({"networkVlan": {"id": v}});
    }
    if let Some(v) = placement.public_vlan {
        t["primaryNetworkComponent"] = json!({"networkVlan": {"id": v}});
    }
    if let Some(ip) = &placement.private_ip {
        t["primaryBackendIpAddress"] = json!(ip);
    }
    if let Some(h) = props.dedicated_host_id {
        t["dedicatedHost"] = json!({"id": h});
    }
    if let Some(gb) = props.ephemeral_disk_size {
        t["blockDevices"] = json!([{"device": "2", "diskImage": {"capacity": gb}}]);
    }
    let keys: Vec<Value> = props
        .ssh_key
        .into_iter()
        .chain(props.ssh_keys.iter().copied())
        .map(|k| json!({"id": k}))
        .collect();
    if !keys.is_empty() {
        t["sshKeys"] = Value::Array(keys);
    }
    t
}

/// The cloud_properties keys read (for the README's parity table test).
#[cfg(test)]
pub(crate) fn fields() -> &'static [&'static str] {
    crate::props::fields_of::<VmProps>()
}
