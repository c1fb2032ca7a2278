//! Heavy stemcell import without an inception VM: `root.img` streamed out of
//! the stemcell's `image` (read by the shared stemcell crate) into an EBS
//! snapshot through the EBS direct APIs. All-zero blocks are skipped (a new
//! snapshot reads as zeros), a few blocks are in flight at once, and a
//! failure part-way deletes the snapshot.

use crate::errors::{call, sdk};
use crate::stemcell::delete_snapshot_quietly;
use ::stemcell::{Block, StemcellError};
use aws_sdk_ebs::primitives::ByteStream;
use aws_sdk_ebs::types::{ChecksumAlgorithm, Tag};
use base64::Engine;
use cpi::{Error, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::sync::mpsc::Receiver;

/// The EBS direct APIs' block size.
pub const BLOCK_SIZE: usize = 512 * 1024;
/// Blocks uploaded at once: enough to hide latency, few enough to keep
/// memory at a few MiB.
const IN_FLIGHT: usize = 4;
const GIB: u64 = 1024 * 1024 * 1024;

/// Whether the imported snapshot (and so the image's root) is encrypted.
pub struct Encryption {
    pub encrypted: bool,
    pub kms_key_arn: Option<String>,
}

/// Imports the image and answers the snapshot id (not yet waited on).
pub async fn import_image(
    ebs: &aws_sdk_ebs::Client,
    ec2: &aws_sdk_ec2::Client,
    image: &Path,
    disk_mib: Option<u64>,
    tags: &[(String, String)],
    encryption: &Encryption,
) -> Result<String> {
    // The size sets the volume; reading it first also refuses an image
    // with no root.img before anything is made in the cloud.
    let path = image.to_owned();
    let size = tokio::task::spawn_blocking(move || ::stemcell::root_img_size(&path))
        .await
        .map_err(|e| Error::cpi(format!("reading {}: {e}", image.display())))??;
    let mut blocks = ::stemcell::spawn_root_img_blocks(image.to_owned(), BLOCK_SIZE, IN_FLIGHT * 2);
    let min_gib = disk_mib.map(|m| m.div_ceil(1024)).unwrap_or(0);
    let volume_gib = size.div_ceil(GIB).max(min_gib).max(1);
    let token = crate::create::token();
    let mut all_tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    all_tags.push(
        Tag::builder()
            .key(crate::create::TOKEN_TAG)
            .value(&token)
            .build(),
    );
    let req = ebs
        .start_snapshot()
        .client_token(&token)
        .volume_size(volume_gib as i64)
        .description("BOSH stemcell import")
        .set_tags(Some(all_tags))
        .timeout(60)
        .set_encrypted(encryption.encrypted.then_some(true))
        .set_kms_key_arn(if encryption.encrypted {
            encryption.kms_key_arn.clone()
        } else {
            None
        });
    let snapshot = crate::create::once(
        "StartSnapshot",
        || async {
            let out = req.clone().send().await.map_err(sdk("StartSnapshot"))?;
            out.snapshot_id()
                .map(str::to_owned)
                .ok_or_else(|| Error::cloud("StartSnapshot: the response has no snapshot id"))
        },
        || crate::create::snapshot_by_token(&ec2, &token),
    )
    .await?;
    tracing::info!(
        "create_stemcell: importing {size} bytes into snapshot {snapshot} ({volume_gib} GiB)"
    );

    let result = upload(ebs, &snapshot, &mut blocks, size).await;
    // Dropping the receiver stops the reader thread if it is still going.
    drop(blocks);
    match result {
        Ok(()) => Ok(snapshot),
        Err(e) => {
            if let Err(d) = delete_snapshot_quietly(ec2, &snapshot).await {
                tracing::error!(
                    "import cleanup: deleting snapshot {snapshot}: {}",
                    d.message()
                );
            }
            Err(e)
        }
    }
}

async fn upload(
    ebs: &aws_sdk_ebs::Client,
    snapshot: &str,
    blocks: &mut Receiver<Result<Block, StemcellError>>,
    size: u64,
) -> Result<()> {
    let mut in_flight = FuturesUnordered::new();
    let mut count = 0i32;
    let mut read = 0u64;
    loop {
        // Keep at most IN_FLIGHT uploads going; read more only below that.
        while in_flight.len() >= IN_FLIGHT {
            in_flight.next().await.expect("non-empty")?;
        }
        let Some(block) = next_non_zero(blocks, &mut read).await? else {
            break;
        };
        count += 1;
        in_flight.push(put_block(ebs, snapshot, block));
    }
    // The reader ends with an error on a short image; this guards against
    // it stopping without one.
    if read != size {
        return Err(Error::cpi(format!(
            "image reader stopped after {read} of {size} bytes of root.img"
        )));
    }
    while let Some(r) = in_flight.next().await {
        r?;
    }
    send!(
        "CompleteSnapshot",
        ebs.complete_snapshot()
            .snapshot_id(snapshot)
            .changed_blocks_count(count)
    )
    .await?;
    tracing::info!("create_stemcell: {count} non-zero blocks uploaded to {snapshot}");
    Ok(())
}

/// The next block worth uploading, or None at the end of the image. All-zero
/// blocks are skipped: a new snapshot reads as zeros. `read` counts the
/// bytes seen, skipped or not.
async fn next_non_zero(
    blocks: &mut Receiver<Result<Block, StemcellError>>,
    read: &mut u64,
) -> Result<Option<Block>> {
    while let Some(block) = blocks.recv().await {
        let block = block?;
        *read = block.offset + block.data.len() as u64;
        if !block.is_zero() {
            return Ok(Some(block));
        }
    }
    Ok(None)
}

/// A block as PutSnapshotBlock takes it: whole (the image's short last
/// block padded with zeros) with its SHA-256, base64.
struct EbsBlock {
    index: i32,
    data: Vec<u8>,
    checksum: String,
}

impl EbsBlock {
    fn new(block: Block) -> Result<EbsBlock> {
        let index = i32::try_from(block.index).map_err(|_| {
            Error::cpi(format!(
                "root.img is too large for an EBS snapshot: block {} is past the last index",
                block.index
            ))
        })?;
        let mut data = block.data;
        data.resize(BLOCK_SIZE, 0);
        let checksum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&data));
        Ok(EbsBlock {
            index,
            data,
            checksum,
        })
    }
}

async fn put_block(ebs: &aws_sdk_ebs::Client, snapshot: &str, block: Block) -> Result<()> {
    // Hashing half a MiB is CPU work: off the runtime's thread, so the
    // other uploads keep moving meanwhile.
    let position = block.index;
    let EbsBlock {
        index,
        data,
        checksum,
    } = tokio::task::spawn_blocking(move || EbsBlock::new(block))
        .await
        .map_err(|e| Error::cpi(format!("hashing block {position}: {e}")))??;
    let len = data.len() as i32;
    // A body cannot be cloned: each attempt takes its own handle on the
    // same bytes. Writing a block twice is harmless.
    let data = bytes::Bytes::from(data);
    call("PutSnapshotBlock", || {
        ebs.put_snapshot_block()
            .snapshot_id(snapshot)
            .block_index(index)
            .data_length(len)
            .checksum(&checksum)
            .checksum_algorithm(ChecksumAlgorithm::ChecksumAlgorithmSha256)
            .block_data(ByteStream::from(data.clone()))
            .send()
    })
    .await
    .map_err(|e| e.context(format!("block {index}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(name: &str, member: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(member.len() as u64);
        header.set_cksum();
        tar.append_data(&mut header, name, member).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        file
    }

    /// What `upload` would send, through the same reader and filter.
    fn uploads(path: &Path) -> Result<Vec<EbsBlock>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut blocks = ::stemcell::spawn_root_img_blocks(path.to_owned(), BLOCK_SIZE, 2);
            let mut read = 0;
            let mut out = Vec::new();
            while let Some(block) = next_non_zero(&mut blocks, &mut read).await? {
                out.push(EbsBlock::new(block)?);
            }
            Ok(out)
        })
    }

    #[test]
    fn skips_zero_blocks_and_pads_the_last_one() {
        let mut img = vec![0u8; 2 * BLOCK_SIZE + 100];
        img[2 * BLOCK_SIZE + 99] = 1;
        let file = image_with("./root.img", &img);
        assert_eq!(
            ::stemcell::root_img_size(file.path()).unwrap(),
            img.len() as u64
        );
        let sent = uploads(file.path()).unwrap();
        assert_eq!(sent.len(), 1, "blocks 0 and 1 are zeros and skipped");
        let block = &sent[0];
        assert_eq!(block.index, 2);
        assert_eq!(block.data.len(), BLOCK_SIZE, "padded to a whole block");
        assert_eq!(block.data[99], 1);
        assert!(block.data[100..].iter().all(|b| *b == 0));
        let expected =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&block.data));
        assert_eq!(block.checksum, expected);
    }

    #[test]
    fn a_tar_without_root_img_is_refused() {
        let file = image_with("other", b"abc");
        let e = Error::from(::stemcell::root_img_size(file.path()).unwrap_err());
        assert_eq!(e.kind(), cpi::ErrorKind::Cpi);
        assert!(e.message().contains("root.img"), "{}", e.message());
        let e = uploads(file.path()).err().expect("refused");
        assert!(e.message().contains("root.img"), "{}", e.message());

        std::fs::write(file.path(), b"plain text").unwrap();
        let e = Error::from(::stemcell::root_img_size(file.path()).unwrap_err());
        assert_eq!(e.kind(), cpi::ErrorKind::Cpi);
        let shown = file.path().display().to_string();
        assert!(e.message().contains(&shown), "{}", e.message());
    }
}
