//! Stemcells: light ones name an AMI that already exists (`"<ami> light"`,
//! nothing made, nothing deleted); heavy ones are imported into a snapshot
//! through the EBS direct APIs and registered as an AMI.

use crate::cloud::{tags, Aws};
use crate::errors::{is_not_found, sdk};
use crate::import;
use crate::props::{tag_pairs, StemcellProps};
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, EbsBlockDevice, VolumeType,
};
use aws_sdk_ec2::Client;
use cpi::wait::{self, Backoff};
use cpi::{CreateStemcell, Error, Metadata, Result, StemcellCid};

const LIGHT_SUFFIX: &str = " light";
/// Tag on an imported image naming the snapshot its root was imported into.
const SNAPSHOT_TAG: &str = "bosh_imported_snapshot_id";

/// What `create_vm` needs of an image.
pub struct ImageInfo {
    pub id: String,
    pub root_device_name: String,
    pub root_snapshot_id: Option<String>,
    /// `hvm` or `paravirtual`: device names of raw instance storage.
    pub virtualization_type: String,
}

/// The AMI id behind a stemcell cid, light or not.
pub fn ami_of(cid: &StemcellCid) -> &str {
    cid.as_str().trim_end_matches(LIGHT_SUFFIX).trim()
}

pub async fn image_for(ec2: &Client, cid: &StemcellCid) -> Result<ImageInfo> {
    let ami = ami_of(cid);
    let image = describe(ec2, ami)
        .await?
        .ok_or_else(|| Error::cloud(format!("stemcell {cid}: image {ami} not found")))?;
    let root_device_name = image.root_device_name().unwrap_or("/dev/xvda").to_owned();
    let root_snapshot_id = image
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(root_device_name.as_str()))
        .and_then(|m| m.ebs())
        .and_then(|e| e.snapshot_id())
        .map(str::to_owned);
    Ok(ImageInfo {
        id: ami.to_owned(),
        root_device_name,
        root_snapshot_id,
        virtualization_type: image
            .virtualization_type()
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| "hvm".into()),
    })
}

async fn describe(ec2: &Client, ami: &str) -> Result<Option<aws_sdk_ec2::types::Image>> {
    let out = send!(
        "DescribeImages",
        ec2.describe_images()
            .image_ids(ami)
            .include_deprecated(true)
    )
    .await;
    match out {
        Ok(out) => Ok(out
            .images()
            .iter()
            .find(|i| i.image_id() == Some(ami))
            .cloned()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

impl cpi::Stemcells for Aws {
    async fn create_stemcell(&self, args: CreateStemcell) -> Result<StemcellCid> {
        let props: StemcellProps =
            cpi::typed("create_stemcell: cloud_properties", &args.cloud_properties)?;
        let region = self.region();
        if let Some(amis) = &props.ami {
            let ami = amis.get(&region).ok_or_else(|| {
                Error::cloud(format!(
                    "Stemcell does not contain an AMI in region {region}"
                ))
            })?;
            let ec2 = self.ec2().await?;
            if describe(ec2, ami).await?.is_none() {
                return Err(Error::cloud(format!(
                    "create_stemcell: light stemcell's AMI {ami} not found in region {region}"
                )));
            }
            if props.encrypted == Some(true) {
                return copy_encrypted(ec2, ami, &region, props.kms_key_arn.as_deref())
                    .await
                    .map(StemcellCid::new)
                    .map_err(|e| e.context("create_stemcell"));
            }
            return Ok(StemcellCid::new(format!("{ami}{LIGHT_SUFFIX}")));
        }
        self.create_heavy(&args, &props).await
    }

    async fn delete_stemcell(&self, cid: StemcellCid) -> Result<()> {
        let ec2 = self.ec2().await?;
        let ami = ami_of(&cid);
        let Some(image) = describe(ec2, ami).await? else {
            return Ok(());
        };
        if cid.as_str().ends_with(LIGHT_SUFFIX) {
            return Ok(());
        }
        // The image's snapshots, and the one it was imported into (named in
        // a tag: some clouds, moto among them, copy it on RegisterImage).
        let mut snapshots: Vec<String> = image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
            .collect();
        snapshots.extend(
            image
                .tags()
                .iter()
                .filter(|t| t.key() == Some(SNAPSHOT_TAG))
                .filter_map(|t| t.value().map(str::to_owned)),
        );
        snapshots.sort();
        snapshots.dedup();
        match send!("DeregisterImage", ec2.deregister_image().image_id(ami)).await {
            Err(e) if !is_not_found(&e) => return Err(e.context(format!("delete_stemcell {cid}"))),
            _ => {}
        }
        for s in snapshots {
            delete_snapshot_quietly(ec2, &s)
                .await
                .map_err(|e| e.context(format!("delete_stemcell {cid}")))?;
        }
        Ok(())
    }
}

/// Polls until the image is `available`; `failed` ends the wait.
async fn wait_available(ec2: &Client, ami: &str) -> Result<()> {
    wait::wait_for(
        format!("image {ami} to be available"),
        Backoff::resource(),
        || async move {
            match describe(ec2, ami).await? {
                Some(i) => match i.state().map(|s| s.as_str()) {
                    Some("available") => Ok(Some(())),
                    Some("failed") | Some("error") => {
                        Err(Error::cloud(format!("image {ami} failed")))
                    }
                    _ => Ok(None),
                },
                None => Ok(None),
            }
        },
    )
    .await
}

/// A light stemcell asked to be encrypted: an encrypted copy of its AMI,
/// owned (and deleted) like an imported one.
async fn copy_encrypted(
    ec2: &Client,
    ami: &str,
    region: &str,
    kms: Option<&str>,
) -> Result<String> {
    let token = crate::create::token();
    let name = format!("BOSH-{token}");
    let req = ec2
        .copy_image()
        .source_image_id(ami)
        .source_region(region)
        .name(&name)
        .client_token(&token)
        .encrypted(true)
        .set_kms_key_id(kms.map(str::to_owned));
    let copy = crate::create::once(
        "CopyImage",
        || async {
            let out = req.clone().send().await.map_err(sdk("CopyImage"))?;
            out.image_id()
                .map(str::to_owned)
                .ok_or_else(|| Error::cloud("CopyImage: the response has no image id"))
        },
        || image_named(ec2, &name),
    )
    .await?;
    if let Err(e) = wait_available(ec2, &copy).await {
        let _ = send!("DeregisterImage", ec2.deregister_image().image_id(&copy)).await;
        return Err(e);
    }
    Ok(copy)
}

/// The image of this account with this name (names are unique to a call).
async fn image_named(ec2: &Client, name: &str) -> Result<Option<String>> {
    let out = send!(
        "DescribeImages",
        ec2.describe_images().owners("self").filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("name")
                .values(name)
                .build()
        )
    )
    .await?;
    Ok(out
        .images()
        .first()
        .and_then(|i| i.image_id())
        .map(str::to_owned))
}

/// Deletes a snapshot; missing is success.
pub async fn delete_snapshot_quietly(ec2: &Client, id: &str) -> Result<()> {
    match send!("DeleteSnapshot", ec2.delete_snapshot().snapshot_id(id)).await {
        Err(e) if !is_not_found(&e) => Err(e),
        _ => Ok(()),
    }
}

impl Aws {
    async fn create_heavy(
        &self,
        args: &CreateStemcell,
        props: &StemcellProps,
    ) -> Result<StemcellCid> {
        let mut tags = Metadata::default();
        tags.0.extend(props.tags.0.clone());
        tags.0.extend(args.tags.clone());
        let tag_list = tag_pairs(&tags);
        let ebs = self.ebs().await?;
        let aws = self.config.aws();
        let encryption = import::Encryption {
            encrypted: props.encrypted.unwrap_or(aws.encrypted),
            kms_key_arn: props
                .kms_key_arn
                .clone()
                .or_else(|| aws.kms_key_arn.clone()),
        };
        let snapshot = import::import_image(
            ebs,
            self.ec2().await?,
            &args.image_path,
            props.disk,
            &tag_list,
            &encryption,
        )
        .await
        .map_err(|e| e.context("create_stemcell"))?;
        let ec2 = self.ec2().await?;
        match self.register(ec2, &snapshot, props, &tag_list).await {
            Ok(ami) => Ok(StemcellCid::new(ami)),
            Err(e) => {
                if let Err(d) = delete_snapshot_quietly(ec2, &snapshot).await {
                    tracing::error!(
                        "create_stemcell cleanup: deleting snapshot {snapshot}: {}",
                        d.message()
                    );
                }
                Err(e.context("create_stemcell"))
            }
        }
    }

    async fn register(
        &self,
        ec2: &Client,
        snapshot: &str,
        props: &StemcellProps,
        tag_list: &[(String, String)],
    ) -> Result<String> {
        // The snapshot must be `completed` before EC2 registers an image on it.
        wait::wait_for(
            format!("snapshot {snapshot} to complete"),
            Backoff::resource(),
            || async move {
                let out = send!(
                    "DescribeSnapshots",
                    ec2.describe_snapshots().snapshot_ids(snapshot)
                )
                .await?;
                let state = out
                    .snapshots()
                    .first()
                    .and_then(|s| s.state())
                    .map(|s| s.as_str().to_owned());
                match state.as_deref() {
                    Some("completed") => Ok(Some(())),
                    Some("error") => Err(Error::cloud(format!("snapshot {snapshot} failed"))),
                    _ => Ok(None),
                }
            },
        )
        .await?;
        if let Some(v) = props.virtualization_type.as_deref().filter(|v| *v != "hvm") {
            return Err(Error::cpi(format!(
                "cloud_properties.virtualization_type: '{v}' is not supported, only hvm"
            )));
        }
        let root = props
            .root_device_name
            .clone()
            .unwrap_or_else(|| "/dev/xvda".into());
        // The name is unique to this call: a re-send after a lost answer
        // first looks for an image of that name.
        let name = format!("BOSH-{}", uuid::Uuid::new_v4());
        let arch = match props.architecture.as_deref() {
            Some("arm64") | Some("aarch64") => ArchitectureValues::Arm64,
            _ => ArchitectureValues::X8664,
        };
        let mut req = ec2
            .register_image()
            .name(&name)
            .architecture(arch)
            .virtualization_type("hvm")
            .root_device_name(&root)
            .ena_support(true)
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name(&root)
                    .ebs(
                        EbsBlockDevice::builder()
                            .snapshot_id(snapshot)
                            .volume_type(VolumeType::Gp3)
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            )
            .block_device_mappings(
                BlockDeviceMapping::builder()
                    .device_name("/dev/sdb")
                    .virtual_name("ephemeral0")
                    .build(),
            );
        if let Some(mode) = props.boot_mode.as_deref() {
            req = req.boot_mode(BootModeValues::from(mode));
        }
        let ami = crate::create::once(
            "RegisterImage",
            || async {
                let out = req.clone().send().await.map_err(sdk("RegisterImage"))?;
                out.image_id()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::cloud("RegisterImage: the response has no image id"))
            },
            || image_named(ec2, &name),
        )
        .await?;
        // Tagged apart rather than in RegisterImage: not every EC2 look-alike
        // takes tag specifications there.
        let mut all_tags = tag_list.to_vec();
        all_tags.push((SNAPSHOT_TAG.to_owned(), snapshot.to_owned()));
        let tagged = send!(
            "CreateTags",
            ec2.create_tags()
                .resources(&ami)
                .set_tags(Some(tags(&all_tags)))
        )
        .await;
        let available = match tagged {
            Err(e) => Err(e),
            Ok(_) => wait_available(ec2, &ami).await,
        };
        if let Err(e) = available {
            // Leave nothing behind: the image goes, the caller deletes the snapshot.
            if let Err(d) = send!("DeregisterImage", ec2.deregister_image().image_id(&ami)).await {
                tracing::error!(
                    "create_stemcell cleanup: deregistering {ami}: {}",
                    d.message()
                );
            }
            return Err(e);
        }
        Ok(ami)
    }
}
