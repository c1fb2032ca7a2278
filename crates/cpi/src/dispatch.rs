//! From a method name and its JSON arguments to a typed trait call, and from
//! its answer to the result shape of the negotiated API version.

use crate::args::*;
use crate::cloud::Cloud;
use crate::{Error, Result};
use serde_json::{json, Map, Value};

/// Every method the protocol defines (v1 to v3).
pub const METHODS: &[&str] = &[
    "info",
    "ping",
    "create_stemcell",
    "delete_stemcell",
    "create_vm",
    "delete_vm",
    "has_vm",
    "reboot_vm",
    "set_vm_metadata",
    "calculate_vm_cloud_properties",
    "create_disk",
    "delete_disk",
    "has_disk",
    "attach_disk",
    "detach_disk",
    "get_disks",
    "resize_disk",
    "update_disk",
    "set_disk_metadata",
    "snapshot_disk",
    "delete_snapshot",
    "create_network",
    "delete_network",
    "current_vm_id",
];

pub fn is_known(method: &str) -> bool {
    METHODS.contains(&method)
}

/// Calls `method` on `cloud`. `api_version` picks the result shape.
pub async fn dispatch<C: Cloud>(
    cloud: &C,
    method: &str,
    arguments: Vec<Value>,
    api_version: u32,
) -> Result<Value> {
    let m = method;
    macro_rules! args {
        ($($name:literal),* ; $required:expr) => {
            Args::new(m, arguments, &[$($name),*], $required)?
        };
    }
    Ok(match method {
        "ping" => json!("pong"),
        "create_stemcell" => {
            let a = args!("image_path", "cloud_properties", "env"; 2);
            #[derive(serde::Deserialize, Default)]
            struct Env {
                #[serde(default)]
                tags: Option<Metadata>,
            }
            let env: Option<Env> = a.opt(2)?;
            let args = CreateStemcell {
                image_path: a.get::<String>(0)?.into(),
                cloud_properties: a.opt(1)?.unwrap_or_default(),
                tags: env.and_then(|e| e.tags).map(|t| t.0).unwrap_or_default(),
            };
            json!(cloud.create_stemcell(args).await?)
        }
        "delete_stemcell" => {
            let a = args!("stemcell_cid"; 1);
            cloud.delete_stemcell(a.get(0)?).await?;
            Value::Null
        }
        "create_vm" => {
            let a = args!("agent_id", "stemcell_cid", "cloud_properties", "networks", "disk_cids", "env"; 4);
            let args = CreateVm {
                agent_id: a.get(0)?,
                stemcell_cid: a.get(1)?,
                cloud_properties: a.opt(2)?.unwrap_or_default(),
                networks: a.get(3)?,
                disk_cids: a.opt(4)?.unwrap_or_default(),
                env: a.opt(5)?.unwrap_or_default(),
            };
            let vm = cloud.create_vm(args).await?;
            if api_version >= 2 {
                json!([vm.cid, vm.networks])
            } else {
                json!(vm.cid)
            }
        }
        "delete_vm" => {
            let a = args!("vm_cid"; 1);
            cloud.delete_vm(a.get(0)?).await?;
            Value::Null
        }
        "has_vm" => {
            let a = args!("vm_cid"; 1);
            json!(cloud.has_vm(a.get(0)?).await?)
        }
        "reboot_vm" => {
            let a = args!("vm_cid", "options"; 1);
            cloud.reboot_vm(a.get(0)?).await?;
            Value::Null
        }
        "set_vm_metadata" => {
            let a = args!("vm_cid", "metadata"; 2);
            cloud.set_vm_metadata(a.get(0)?, a.get(1)?).await?;
            Value::Null
        }
        "calculate_vm_cloud_properties" => {
            let a = args!("vm_resources"; 1);
            Value::Object(cloud.calculate_vm_cloud_properties(a.get(0)?).await?)
        }
        "create_disk" => {
            let a = args!("size", "cloud_properties", "vm_locality"; 1);
            let args = CreateDisk {
                size_mb: a.get(0)?,
                cloud_properties: a.opt(1)?.unwrap_or_default(),
                vm_cid: a.opt(2)?,
            };
            json!(cloud.create_disk(args).await?)
        }
        "delete_disk" => {
            let a = args!("disk_cid"; 1);
            cloud.delete_disk(a.get(0)?).await?;
            Value::Null
        }
        "has_disk" => {
            let a = args!("disk_cid"; 1);
            json!(cloud.has_disk(a.get(0)?).await?)
        }
        "attach_disk" => {
            let a = args!("vm_cid", "disk_cid"; 2);
            let hint = cloud.attach_disk(a.get(0)?, a.get(1)?).await?;
            if api_version >= 2 {
                if hint.is_empty() {
                    return Err(Error::new(
                        crate::ErrorKind::AttachDiskResponse,
                        "attach_disk: the cloud gave an empty disk hint",
                    ));
                }
                json!(hint)
            } else {
                Value::Null
            }
        }
        "detach_disk" => {
            let a = args!("vm_cid", "disk_cid"; 2);
            cloud.detach_disk(a.get(0)?, a.get(1)?).await?;
            Value::Null
        }
        "get_disks" => {
            let a = args!("vm_cid"; 1);
            json!(cloud.get_disks(a.get(0)?).await?)
        }
        "resize_disk" => {
            let a = args!("disk_cid", "new_size"; 2);
            cloud.resize_disk(a.get(0)?, a.get(1)?).await?;
            Value::Null
        }
        "update_disk" => {
            let a = args!("disk_cid", "new_size", "cloud_properties"; 2);
            let args = UpdateDisk {
                disk_cid: a.get(0)?,
                new_size_mb: a.get(1)?,
                cloud_properties: a.opt(2)?.unwrap_or_default(),
            };
            json!(cloud.update_disk(args).await?)
        }
        "set_disk_metadata" => {
            let a = args!("disk_cid", "metadata"; 2);
            cloud.set_disk_metadata(a.get(0)?, a.get(1)?).await?;
            Value::Null
        }
        "snapshot_disk" => {
            let a = args!("disk_cid", "metadata"; 1);
            let metadata: Option<Metadata> = a.opt(1)?;
            json!(
                cloud
                    .snapshot_disk(a.get(0)?, metadata.unwrap_or_default())
                    .await?
            )
        }
        "delete_snapshot" => {
            let a = args!("snapshot_cid"; 1);
            cloud.delete_snapshot(a.get(0)?).await?;
            Value::Null
        }
        "create_network" => {
            let a = args!("network_definition"; 1);
            let def: Map<String, Value> = a.get(0)?;
            json!(cloud.create_network(def).await?)
        }
        "delete_network" => {
            let a = args!("network_cid"; 1);
            cloud.delete_network(a.get(0)?).await?;
            Value::Null
        }
        "current_vm_id" => json!(cloud.current_vm_id().await?),
        "info" => return Err(Error::cpi("info is answered before dispatch")),
        other => return Err(unknown_method(other)),
    })
}

/// A method this CPI has never heard of. bosh-cpi-go answers these with
/// `NotImplemented`, and the director falls back gracefully on that type (as
/// it does for `update_disk` or `resize_disk`), so a newer director calling a
/// method added after this CPI was built is not failed outright.
pub fn unknown_method(method: &str) -> Error {
    Error::new(
        crate::ErrorKind::NotImplemented,
        format!(
            "unknown method '{method}': this CPI knows {}",
            METHODS.join(", ")
        ),
    )
}
