//! Stemcells. Light: the stemcell names an existing image template
//! (`virtual-disk-image-id`, or its global identifier); creating the
//! stemcell checks it exists and answers its id, deleting it deletes
//! nothing. Heavy (`datacenter-name` and `os-code`, as the Go CPI read
//! them): the image is imported through object storage
//! (`stemcell_import.rs`) and deleting the stemcell deletes the template.

use crate::client::Call;
use crate::cloud::{numeric_id, or_not_found, SoftLayer, TEMPLATE};
use crate::types::{lenient_u64, OneOrMany, Template};
use cpi::{CreateStemcell, Error, Result, StemcellCid, Stemcells};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Debug, Deserialize)]
struct StemcellProps {
    #[serde(
        default,
        rename = "virtual-disk-image-id",
        deserialize_with = "lenient_u64"
    )]
    image_id: Option<u64>,
    #[serde(
        default,
        rename = "virtual-disk-image-uuid",
        alias = "global-identifier",
        alias = "global_identifier"
    )]
    global_identifier: Option<String>,
    #[serde(default)]
    infrastructure: Option<String>,
    /// Heavy: the datacenter whose object storage cluster imports the image.
    #[serde(default, rename = "datacenter-name")]
    datacenter_name: Option<String>,
    /// Heavy: the template's `operatingSystemReferenceCode` (`UBUNTU_22_64`).
    #[serde(default, rename = "os-code")]
    os_code: Option<String>,
    #[serde(flatten)]
    _rest: Map<String, Value>,
}

impl Stemcells for SoftLayer {
    async fn create_stemcell(&self, args: CreateStemcell) -> Result<StemcellCid> {
        let props: StemcellProps =
            cpi::typed("create_stemcell: cloud_properties", &args.cloud_properties)?;
        if let Some(infra) = &props.infrastructure {
            if !matches!(infra.as_str(), "softlayer" | "bluemix") {
                return Err(Error::cpi(format!(
                    "create_stemcell: cloud_properties.infrastructure: '{infra}' is not a SoftLayer stemcell (softlayer or bluemix)"
                )));
            }
        }
        let id = match (
            props.image_id,
            props.global_identifier.as_deref().filter(|g| !g.is_empty()),
        ) {
            (Some(id), _) => {
                let t: Template = self
                    .send(Call::get(TEMPLATE, Some(id), "getObject").mask("id,name,globalIdentifier"))
                    .await
                    .map_err(|e| {
                        or_not_found(e, || {
                            Error::cloud(format!(
                                "create_stemcell: cloud_properties.virtual-disk-image-id: image template {id} does not exist"
                            ))
                        })
                    })?;
                t.id.unwrap_or(id)
            }
            (None, Some(gid)) => {
                let found: OneOrMany<Template> = self
                    .send(
                        Call::post(TEMPLATE, None, "getByIdentifier", vec![json!(gid)])
                            .idempotent()
                            .mask("id,globalIdentifier"),
                    )
                    .await
                    .map_err(|e| Error::from(e).context("create_stemcell"))?;
                found.into_vec().into_iter().find_map(|t| t.id).ok_or_else(|| {
                    Error::cloud(format!(
                        "create_stemcell: cloud_properties.virtual-disk-image-uuid: no image template has global identifier '{gid}'"
                    ))
                })?
            }
            (None, None) => {
                let need = |v: &Option<String>, key: &str| {
                    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(|| {
                        Error::cpi(format!(
                            "create_stemcell: cloud_properties.{key}: missing; a heavy stemcell needs datacenter-name and os-code \
                             (a light one virtual-disk-image-id or virtual-disk-image-uuid)"
                        ))
                    })
                };
                let datacenter = need(&props.datacenter_name, "datacenter-name")?;
                let os_code = need(&props.os_code, "os-code")?;
                let image = std::path::Path::new(&args.image_path);
                return Ok(StemcellCid::new(
                    self.import_heavy(image, &datacenter, &os_code)
                        .await?
                        .to_string(),
                ));
            }
        };
        tracing::info!("stemcell: image template {id} exists");
        Ok(StemcellCid::new(id.to_string()))
    }

    async fn delete_stemcell(&self, cid: StemcellCid) -> Result<()> {
        // A light stemcell's image template belongs to the operator and is
        // kept; an imported one is deleted (the template says which).
        match numeric_id(cid.as_str()) {
            Some(id) => self.delete_imported(id).await,
            None => {
                tracing::info!("delete_stemcell {cid}: not a SoftLayer id, nothing to delete");
                Ok(())
            }
        }
    }
}
