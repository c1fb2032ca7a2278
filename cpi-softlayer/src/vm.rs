//! The VM methods besides creation: delete (cancel; gone is success), has
//! (ObjectNotFound is false), reboot, metadata as tags, and the cloud
//! properties for a resource request.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, GUEST, STORAGE};
use crate::types::{Guest, IdOnly};
use agent::RegistryClient;
use cpi::{CloudProperties, CreateVm, CreatedVm, Error, Metadata, Result, VmCid, VmResources, Vms};
use serde_json::json;

/// Transactions of a guest on its way out: it no longer counts as a VM.
const LEAVING: [&str; 3] = ["RECLAIM_WAIT", "CLOUD_INSTANCE_DELETE", "CLOUD_RECLAIM"];

impl Vms for SoftLayer {
    async fn create_vm(&self, args: CreateVm) -> Result<CreatedVm> {
        self.create(args).await
    }

    async fn delete_vm(&self, cid: VmCid) -> Result<()> {
        match numeric_id(cid.as_str()) {
            Some(id) => {
                self.release_volumes(id).await;
                self.cancel_guest(id)
                    .await
                    .map_err(|e| e.context(format!("delete_vm {cid}")))?
            }
            None => tracing::info!("delete_vm {cid}: not a SoftLayer guest id, nothing to delete"),
        }
        // Settings of a stemcell API v1 VM; none there is fine.
        if let Some(reg) = &self.config.registry {
            match RegistryClient::new(reg, "cloud.properties.registry") {
                Ok(client) => {
                    // Tried a few times: a record left behind is stale
                    // settings. Not an error in the end: bosh-registry
                    // answers 500 for a record that is already gone.
                    let deleted = cpi::wait::retry(
                        format!("removing the registry settings of {cid}"),
                        self.config.waits.api().attempts(3),
                        |e: &Error| {
                            if e.ok_to_retry() {
                                cpi::wait::Verdict::Retry
                            } else {
                                cpi::wait::Verdict::Fail
                            }
                        },
                        || client.delete(&cid),
                    )
                    .await;
                    if let Err(e) = deleted {
                        tracing::warn!(
                            "delete_vm {cid}: removing its registry settings: {} (ignored)",
                            e.message()
                        );
                    }
                }
                Err(e) => tracing::warn!("delete_vm {cid}: {}", e.message()),
            }
        }
        Ok(())
    }

    async fn has_vm(&self, cid: VmCid) -> Result<bool> {
        let Some(id) = numeric_id(cid.as_str()) else {
            return Ok(false);
        };
        let mask = "id,activeTransaction[transactionStatus[name]]";
        match self
            .send::<Guest>(Call::get(GUEST, Some(id), "getObject").mask(mask))
            .await
        {
            Ok(g) => {
                let leaving = g
                    .active_transaction
                    .as_ref()
                    .is_some_and(|t| LEAVING.contains(&t.status_name()));
                Ok(!leaving)
            }
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(Error::from(e).context(format!("has_vm {cid}"))),
        }
    }

    async fn reboot_vm(&self, cid: VmCid) -> Result<()> {
        let id = numeric_id(cid.as_str()).ok_or_else(|| Error::vm_not_found(&cid))?;
        self.run(Call::get(GUEST, Some(id), "rebootSoft"))
            .await
            .map_err(|e| or_not_found(e, || Error::vm_not_found(&cid)).context("reboot_vm"))
    }

    async fn set_vm_metadata(&self, cid: VmCid, metadata: Metadata) -> Result<()> {
        let id = numeric_id(cid.as_str()).ok_or_else(|| Error::vm_not_found(&cid))?;
        let tags = tags(&metadata);
        self.run(Call::post(GUEST, Some(id), "setTags", vec![json!(tags)]).idempotent())
            .await
            .map_err(|e| or_not_found(e, || Error::vm_not_found(&cid)).context("set_vm_metadata"))
    }

    async fn calculate_vm_cloud_properties(&self, r: VmResources) -> Result<CloudProperties> {
        let props = json!({
            "cpu": r.cpu.max(1),
            "memory": r.ram.max(1024),
            "ephemeral_disk_size": r.ephemeral_disk_size.div_ceil(1024).max(25),
        });
        Ok(props.as_object().cloned().unwrap_or_default())
    }
}

impl SoftLayer {
    /// Removes the guest's volume authorisations before it goes, so that
    /// its disks show as detached at once (SoftLayer drops them only when
    /// the guest is reclaimed) and can be deleted. Best effort: the guest's
    /// deletion does not depend on it.
    async fn release_volumes(&self, id: u64) {
        let volumes: Vec<IdOnly> = match self
            .send(Call::get(GUEST, Some(id), "getAllowedNetworkStorage").mask("id"))
            .await
        {
            Ok(v) => v,
            Err(e) if e.is_not_found() => return,
            Err(e) => {
                tracing::warn!("delete_vm {id}: listing its volumes: {e} (continuing)");
                return;
            }
        };
        for v in volumes.into_iter().filter_map(|v| v.id) {
            let call = Call::post(
                STORAGE,
                Some(v),
                "removeAccessFromVirtualGuest",
                vec![json!({"id": id})],
            )
            .idempotent();
            match self.run(call).await {
                Ok(()) => tracing::info!("delete_vm {id}: volume {v} detached"),
                Err(e) => tracing::warn!("delete_vm {id}: detaching volume {v}: {e} (continuing)"),
            }
        }
    }
}

/// SoftLayer tags: `key:value`, comma-separated, so commas inside become
/// spaces. Every key is kept (the director's `name` included).
pub fn tags(metadata: &Metadata) -> String {
    metadata
        .iter()
        .map(|(k, v)| format!("{}:{}", k.replace([',', ':'], " "), v.replace(',', " ")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn tags_keep_every_key_and_drop_separators() {
        let m = Metadata(BTreeMap::from([
            ("name".to_owned(), "web/0".to_owned()),
            ("deployment".to_owned(), "a,b".to_owned()),
            ("url".to_owned(), "http://x:1".to_owned()),
        ]));
        assert_eq!(tags(&m), "deployment:a b,name:web/0,url:http://x:1");
        assert_eq!(tags(&Metadata::default()), "");
    }
}
