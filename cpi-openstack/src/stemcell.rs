//! Stemcells as Glance images: light ones point at an existing image, heavy
//! ones are uploaded straight from the stemcell's tarball.

use crate::cloud::OpenStack;
use crate::error::OsError;
use crate::image_stream;
use crate::session::Service;
use crate::types::Image;
use crate::waits::{self, Seen, Target};
use cpi::wait::{retry, Verdict};
use cpi::{CreateStemcell, Error, Result, StemcellCid};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

const LIGHT: &str = " light";

/// The image property carrying the create call's token.
const CREATE_TOKEN: &str = "bosh_create_token";

#[derive(Deserialize)]
pub(crate) struct Images {
    images: Vec<Image>,
}

#[derive(Deserialize)]
struct StemcellProps {
    #[serde(default)]
    image_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    disk_format: Option<String>,
    #[serde(default)]
    container_format: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Whether `create_stemcell` reads this `cloud_properties` key.
#[cfg(test)]
pub(crate) fn reads(key: &str) -> bool {
    [
        "image_id",
        "name",
        "version",
        "disk_format",
        "container_format",
        "hypervisor",
    ]
    .contains(&key)
        || PASSED_ON.contains(&key)
        || key.starts_with("hw_")
        || key.starts_with("vmware_")
}

/// Properties Glance keeps on the image, as strings (Glance refuses others).
const PASSED_ON: &[&str] = &["os_type", "os_distro", "architecture", "auto_disk_config"];

pub async fn create(cloud: &OpenStack, args: CreateStemcell) -> Result<StemcellCid> {
    let props: StemcellProps = cpi::typed("cloud_properties", &args.cloud_properties)?;
    let session = cloud.session()?;
    if let Some(id) = props.image_id {
        let image: Image = session
            .get(Service::Image, &format!("/images/{id}"))
            .await?
            .ok_or_else(|| Error::cloud(format!("light stemcell: image '{id}' not found")))?;
        if image.status != "active" {
            return Err(Error::cloud(format!(
                "light stemcell: image '{id}' is '{}', not active",
                image.status
            )));
        }
        return Ok(StemcellCid::new(format!("{id}{LIGHT}")));
    }

    let name = props
        .name
        .ok_or_else(|| Error::cpi("cloud_properties.name: missing (or set image_id)"))?;
    let version = match props.version {
        Some(Value::String(s)) => s,
        Some(v) if !v.is_null() => v.to_string(),
        _ => return Err(Error::cpi("cloud_properties.version: missing")),
    };
    let size = image_stream::check(args.image_path.clone()).await?;
    // The first try's upload body starts reading (gunzipping) root.img now,
    // on its own thread, while the token and the image record are fetched:
    // its first blocks are ready when the upload starts. Dropped unsent (the
    // record could not be made), the reader stops.
    let prefetched = image_stream::stream(args.image_path.clone());
    let mut body = json!({
        "name": format!("{name}/{version}"),
        "disk_format": props.disk_format.unwrap_or_else(|| "qcow2".into()),
        "container_format": props.container_format.unwrap_or_else(|| "bare".into()),
        "visibility": if cloud.opts.stemcell_public_visibility { "public" } else { "private" },
    });
    for (k, v) in &props.rest {
        let key = if k == "hypervisor" {
            "hypervisor_type"
        } else {
            k.as_str()
        };
        if PASSED_ON.contains(&k.as_str())
            || k == "hypervisor"
            || k.starts_with("hw_")
            || k.starts_with("vmware_")
        {
            body[key] = Value::String(as_text(v));
        }
    }
    for (k, v) in &args.tags {
        body[k.as_str()] = Value::String(v.clone());
    }
    // A token of this call on the image, to find it again if the answer to
    // the POST is lost (Glance filters listings by any property).
    let token = uuid::Uuid::new_v4().to_string();
    body[CREATE_TOKEN] = json!(token);
    let image: Image = session
        .create(Service::Image, "/images", &body, async || {
            let found: Option<Images> = session
                .get(Service::Image, &format!("/images?{CREATE_TOKEN}={token}"))
                .await?;
            Ok(found.and_then(|f| f.images.into_iter().next()))
        })
        .await?;
    tracing::info!(
        "created image {} for stemcell {name}/{version}, uploading {size} bytes",
        image.id
    );
    if let Err(e) = upload(cloud, &image.id, &args, prefetched).await {
        remove_image(cloud, &image.id).await;
        return Err(e);
    }
    Ok(StemcellCid::new(image.id))
}

async fn upload(
    cloud: &OpenStack,
    id: &str,
    args: &CreateStemcell,
    prefetched: (reqwest::Body, image_stream::Failure),
) -> Result<()> {
    let session = cloud.session()?;
    let prefetched = std::cell::Cell::new(Some(prefetched));
    // The stream is re-read from the file on each try, so an upload the
    // cloud refused (5xx, 413/429, a lost connection) can be sent again.
    let verdict = std::cell::Cell::new(Verdict::Fail);
    let tries = std::cell::Cell::new(0u32);
    let throttled = std::cell::Cell::new(0u32);
    retry(
        "image upload",
        session.backoff,
        |_| verdict.get(),
        || async {
            verdict.set(Verdict::Fail);
            tries.set(tries.get() + 1);
            let (body, failure) = prefetched
                .take()
                .unwrap_or_else(|| image_stream::stream(args.image_path.clone()));
            let sent = session
                .put_stream(Service::Image, &format!("/images/{id}/file"), body)
                .await;
            if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(e.into());
            }
            match &sent {
                // An earlier try's answer was lost after Glance took the
                // data: the image is saving or active, which is what we want.
                Err(OsError::Status { status: 409, .. }) if tries.get() > 1 => {
                    let image: Option<Image> = session
                        .get(Service::Image, &format!("/images/{id}"))
                        .await?;
                    if image.is_some_and(|i| matches!(i.status.as_str(), "saving" | "active")) {
                        return Ok(());
                    }
                }
                Err(OsError::Status {
                    status: 413 | 429, ..
                }) => {
                    throttled.set(throttled.get() + 1);
                    verdict.set(Verdict::ThrottledFor(crate::session::throttle_pause(
                        throttled.get(),
                        Some(Duration::from_secs(1)),
                    )));
                }
                Err(OsError::Status { status, .. }) if *status >= 500 => {
                    verdict.set(Verdict::Retry)
                }
                Err(OsError::Transport { .. }) => verdict.set(Verdict::Retry),
                _ => {}
            }
            Ok(sent?)
        },
    )
    .await?;
    waits::until(
        &format!("image {id} to become active"),
        cloud.wait_backoff(),
        Target::Status(&["active"]),
        || async {
            let image: Option<Image> = session
                .get(Service::Image, &format!("/images/{id}"))
                .await?;
            Ok(image.map_or(Seen::Gone, |i| Seen::Status {
                status: i.status,
                fault: None,
            }))
        },
    )
    .await
}

/// Best effort: the failure that got us here is what the director sees.
async fn remove_image(cloud: &OpenStack, id: &str) {
    if let Ok(s) = cloud.session() {
        if let Err(e) = s
            .act(
                Method::DELETE,
                Service::Image,
                &format!("/images/{id}"),
                None,
            )
            .await
        {
            tracing::warn!("cleaning up image {id}: {e}");
        }
    }
}

pub async fn delete(cloud: &OpenStack, cid: &StemcellCid) -> Result<()> {
    if cid.as_str().ends_with(LIGHT) {
        return Ok(()); // a light stemcell owns no image
    }
    let session = cloud.session()?;
    session
        .act(
            Method::DELETE,
            Service::Image,
            &format!("/images/{cid}"),
            None,
        )
        .await?;
    Ok(())
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
