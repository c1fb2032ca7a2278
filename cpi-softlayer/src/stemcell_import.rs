//! Heavy stemcells: the disk image is streamed out of the stemcell's
//! `image` file into SoftLayer object storage (segments of a dynamic large
//! object, never a temporary copy, memory bounded by a few blocks), then
//! `createFromExternalSource` makes an image template of it, which is
//! waited on until active. A failure part-way removes the template and the
//! uploaded objects. The template's note marks it as imported by a CPI, so
//! that `delete_stemcell` deletes it (with its objects) and leaves the
//! operator's templates (light stemcells) alone.

use crate::client::Call;
use crate::cloud::{or_not_found, SoftLayer, TEMPLATE};
use crate::image_source;
use crate::swift::Swift;
use crate::types::lenient_u64;
use ::stemcell::{Block, StemcellError};
use bytes::Bytes;
use cpi::{wait, Error, Result};
use serde::Deserialize;
use serde_json::json;
use std::path::Path;
use tokio::sync::mpsc::Receiver;

/// The note of templates this CPI imports.
const NOTE: &str = "Imported by cpi-softlayer";
/// The Go CPI's note: its templates are heavy stemcells too.
const GO_NOTE: &str = "Imported by SL CPI";
/// Container (and template) names: one container per import.
const PREFIX: &str = "bosh-stemcell-";
const BLOCK: u64 = 1 << 20;
/// Blocks read ahead of the upload.
const IN_FLIGHT: usize = 2;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportedTemplate {
    #[serde(default, deserialize_with = "lenient_u64")]
    id: Option<u64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    status: Option<KeyName>,
    #[serde(default)]
    transaction: Option<Transaction>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyName {
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Transaction {
    #[serde(default)]
    transaction_status: Option<KeyName>,
}

/// What an import has made so far, to undo on failure.
#[derive(Default)]
struct Made {
    container: bool,
    template: Option<u64>,
}

impl SoftLayer {
    /// Imports the image at `image` into datacenter `datacenter`'s object
    /// storage cluster as OS `os_code`; answers the template id.
    pub async fn import_heavy(&self, image: &Path, datacenter: &str, os_code: &str) -> Result<u64> {
        // A bad image is refused before anything exists in the cloud.
        let layout = image_source::probe(image)?;
        let swift = self.swift()?;
        let name = format!("{PREFIX}{}", uuid::Uuid::new_v4());
        let mut made = Made::default();
        let result = self
            .import_steps(swift, image, layout, &name, datacenter, os_code, &mut made)
            .await;
        if let Err(e) = &result {
            tracing::warn!(
                "create_stemcell: import failed ({}); removing what it made",
                e.message()
            );
            self.undo(swift, &name, &made).await;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn import_steps(
        &self,
        swift: &Swift,
        image: &Path,
        layout: image_source::Layout,
        name: &str,
        datacenter: &str,
        os_code: &str,
        made: &mut Made,
    ) -> Result<u64> {
        let object = format!("{name}.vhd");
        swift.put_container(name).await?;
        made.container = true;
        let block = BLOCK.min(swift.segment_size());
        let blocks =
            image_source::spawn_blocks(image.to_owned(), layout, block as usize, IN_FLIGHT);
        let per_segment = (swift.segment_size() / block).max(1);
        let bytes = upload_segments(swift, name, &object, blocks, per_segment).await?;
        if bytes == 0 {
            return Err(Error::cpi(format!(
                "create_stemcell: the stemcell image {} holds an empty disk image",
                image.display()
            )));
        }
        swift
            .put_manifest(name, &object, &format!("{object}/"))
            .await?;
        let uri = format!("swift://{}@{datacenter}/{name}/{object}", swift.account());
        tracing::info!("create_stemcell: uploaded {bytes} bytes; importing {uri}");
        let config = json!({"name": name, "note": NOTE, "operatingSystemReferenceCode": os_code, "uri": uri});
        let created: ImportedTemplate = self
            .send(Call::post(
                TEMPLATE,
                None,
                "createFromExternalSource",
                vec![config],
            ))
            .await
            .map_err(|e| Error::from(e).context("create_stemcell: importing the image"))?;
        let id = created.id.ok_or_else(|| {
            Error::cloud("create_stemcell: createFromExternalSource answered no template id")
        })?;
        made.template = Some(id);
        self.wait_active(id).await?;
        // As the Go CPI: templates of stemcells boot as HVM guests.
        self.run(Call::post(TEMPLATE, Some(id), "setBootMode", vec![json!("HVM")]).idempotent())
            .await
            .map_err(|e| {
                Error::from(e).context(format!(
                    "create_stemcell: setting template {id}'s boot mode"
                ))
            })?;
        tracing::info!("create_stemcell: image template {id} is active");
        Ok(id)
    }

    async fn wait_active(&self, id: u64) -> Result<()> {
        let waits = self.config.waits;
        wait::wait_for(
            format!("image template {id} to finish importing"),
            waits.poll(waits.stemcell_ready),
            || async {
                let t: ImportedTemplate = self
                    .send(
                        Call::get(TEMPLATE, Some(id), "getObject").mask(
                            "id,status[keyName,name],transaction[id,transactionStatus[name]]",
                        ),
                    )
                    .await
                    .map_err(|e| {
                        or_not_found(e, || {
                            Error::cloud(format!("image template {id} disappeared while importing"))
                        })
                    })?;
                let status = t
                    .status
                    .as_ref()
                    .and_then(|s| s.key_name.clone())
                    .unwrap_or_default();
                match (&t.transaction, status.as_str()) {
                    (Some(tx), _) => {
                        let step = tx
                            .transaction_status
                            .as_ref()
                            .and_then(|s| s.name.clone())
                            .unwrap_or_default();
                        tracing::info!("image template {id}: importing ({step})");
                        Ok(None)
                    }
                    (None, "ACTIVE") => Ok(Some(())),
                    (None, other) => Err(Error::cloud(format!(
                        "importing image template {id} failed: its status is {}",
                        if other.is_empty() { "unknown" } else { other }
                    ))),
                }
            },
        )
        .await
    }

    /// Removes the template and the objects of a failed import; failures
    /// here are logged (the import's own error is what the caller needs).
    async fn undo(&self, swift: &Swift, name: &str, made: &Made) {
        if let Some(id) = made.template {
            match self.run(Call::delete(TEMPLATE, id)).await {
                Ok(()) => tracing::info!("create_stemcell: deleted image template {id}"),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::error!("create_stemcell: could not delete image template {id}: {e}")
                }
            }
        }
        if made.container {
            if let Err(e) = swift.remove_container(name).await {
                tracing::error!(
                    "create_stemcell: could not remove object storage container {name}: {}",
                    e.message()
                );
            }
        }
    }

    /// `delete_stemcell` of a template: an imported one is deleted with its
    /// objects; any other (a light stemcell's) is kept. Missing is success.
    pub async fn delete_imported(&self, id: u64) -> Result<()> {
        let found: std::result::Result<ImportedTemplate, _> = self
            .send(Call::get(TEMPLATE, Some(id), "getObject").mask("id,name,note"))
            .await;
        let t = match found {
            Ok(t) => t,
            Err(e) if e.is_not_found() => {
                tracing::info!("delete_stemcell {id}: no such image template, nothing to delete");
                return Ok(());
            }
            Err(e) => return Err(Error::from(e).context("delete_stemcell")),
        };
        let note = t.note.as_deref().unwrap_or_default();
        if !(note.starts_with(NOTE) || note.starts_with(GO_NOTE)) {
            tracing::info!("delete_stemcell {id}: light stemcell, its image template is kept");
            return Ok(());
        }
        match self.run(Call::delete(TEMPLATE, id)).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return Err(Error::from(e)
                    .context(format!("delete_stemcell: deleting image template {id}")))
            }
        }
        let container = t.name.unwrap_or_default();
        if container.starts_with(PREFIX) {
            match &self.config.swift {
                Some(_) => self.swift()?.remove_container(&container).await.map_err(|e| e.context("delete_stemcell"))?,
                None => tracing::warn!("delete_stemcell {id}: object storage is not configured; container {container} is left"),
            }
        }
        tracing::info!("delete_stemcell {id}: deleted the imported image template");
        Ok(())
    }
}

/// Uploads the blocks as segments `object/00000000`, `object/00000001`, …
/// of `per_segment` blocks each, each a streamed PUT; answers the bytes.
async fn upload_segments(
    swift: &Swift,
    container: &str,
    object: &str,
    mut blocks: Receiver<std::result::Result<Block, StemcellError>>,
    per_segment: u64,
) -> Result<u64> {
    let mut total = 0u64;
    for index in 0u64.. {
        let first = match blocks.recv().await {
            None => break,
            Some(Err(e)) => return Err(image_error(e)),
            Some(Ok(b)) => b,
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let segment = format!("{object}/{index:08}");
        let put = swift.put_streamed(container, &segment, reqwest::Body::wrap_stream(stream));
        let source = &mut blocks;
        let feed = async move {
            let mut sent = first.data.len() as u64;
            let (mut count, mut ended, mut failed) = (1u64, false, None);
            if tx.send(Ok(Bytes::from(first.data))).await.is_ok() {
                while count < per_segment {
                    match source.recv().await {
                        None => {
                            ended = true;
                            break;
                        }
                        Some(Ok(b)) => {
                            sent += b.data.len() as u64;
                            count += 1;
                            if tx.send(Ok(Bytes::from(b.data))).await.is_err() {
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            // Ends the request unfinished: no object is made.
                            let _ = tx
                                .send(Err(std::io::Error::other(
                                    "the stemcell image is unreadable",
                                )))
                                .await;
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            (sent, ended, failed)
        };
        let (put, (sent, ended, failed)) = tokio::join!(put, feed);
        if let Some(e) = failed {
            return Err(image_error(e));
        }
        put.map_err(|e| e.context(format!("create_stemcell: uploading segment {index}")))?;
        total += sent;
        tracing::info!("create_stemcell: uploaded segment {index} ({total} bytes so far)");
        if ended {
            break;
        }
    }
    Ok(total)
}

fn image_error(e: StemcellError) -> Error {
    Error::from(e).context("create_stemcell")
}
