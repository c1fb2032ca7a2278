//! Heavy stemcell import without an inception VM: `root.img` streamed out of
//! the stemcell's `image` (a gzipped tar) into an EBS snapshot through the
//! EBS direct APIs. All-zero blocks are skipped (a new snapshot reads as
//! zeros), a few blocks are in flight at once, and a failure part-way
//! deletes the snapshot.

use crate::errors::sdk;
use crate::stemcell::delete_snapshot_quietly;
use aws_sdk_ebs::primitives::ByteStream;
use aws_sdk_ebs::types::{ChecksumAlgorithm, Tag};
use base64::Engine;
use cpi::{Error, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

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

/// What the reader thread sends: the image size first, then non-zero
/// blocks, then the end (or an error).
enum Msg {
    Size(u64),
    Block {
        index: i32,
        data: Vec<u8>,
        checksum: String,
    },
    Done,
    Failed(String),
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
    let (tx, mut rx) = mpsc::channel::<Msg>(IN_FLIGHT * 2);
    let path = image.to_owned();
    let reader = tokio::task::spawn_blocking(move || read_blocks(&path, &tx));

    let size = match rx.recv().await {
        Some(Msg::Size(s)) => s,
        Some(Msg::Failed(e)) => return Err(Error::cpi(e)),
        _ => {
            return Err(Error::cpi(format!(
                "reading {}: ended before root.img",
                image.display()
            )))
        }
    };
    let min_gib = disk_mib.map(|m| m.div_ceil(1024)).unwrap_or(0);
    let volume_gib = size.div_ceil(GIB).max(min_gib).max(1);
    let out = ebs
        .start_snapshot()
        .volume_size(volume_gib as i64)
        .description("BOSH stemcell import")
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .timeout(60)
        .set_encrypted(encryption.encrypted.then_some(true))
        .set_kms_key_arn(if encryption.encrypted {
            encryption.kms_key_arn.clone()
        } else {
            None
        })
        .send()
        .await
        .map_err(sdk("StartSnapshot"))?;
    let snapshot = out
        .snapshot_id()
        .ok_or_else(|| Error::cloud("StartSnapshot: the response has no snapshot id"))?
        .to_owned();
    tracing::info!(
        "create_stemcell: importing {size} bytes into snapshot {snapshot} ({volume_gib} GiB)"
    );

    let result = upload(ebs, &snapshot, &mut rx).await;
    drop(rx);
    let _ = reader.await;
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
    rx: &mut mpsc::Receiver<Msg>,
) -> Result<()> {
    let mut in_flight = FuturesUnordered::new();
    let mut count = 0i32;
    loop {
        // Keep at most IN_FLIGHT uploads going; read more only below that.
        while in_flight.len() >= IN_FLIGHT {
            in_flight.next().await.expect("non-empty")?;
        }
        match rx.recv().await {
            Some(Msg::Block {
                index,
                data,
                checksum,
            }) => {
                count += 1;
                in_flight.push(put_block(ebs, snapshot, index, data, checksum));
            }
            Some(Msg::Done) => break,
            Some(Msg::Failed(e)) => return Err(Error::cpi(e)),
            Some(Msg::Size(_)) | None => {
                return Err(Error::cpi("image reader stopped unexpectedly"))
            }
        }
    }
    while let Some(r) = in_flight.next().await {
        r?;
    }
    ebs.complete_snapshot()
        .snapshot_id(snapshot)
        .changed_blocks_count(count)
        .send()
        .await
        .map_err(sdk("CompleteSnapshot"))?;
    tracing::info!("create_stemcell: {count} non-zero blocks uploaded to {snapshot}");
    Ok(())
}

async fn put_block(
    ebs: &aws_sdk_ebs::Client,
    snapshot: &str,
    index: i32,
    data: Vec<u8>,
    checksum: String,
) -> Result<()> {
    let len = data.len() as i32;
    ebs.put_snapshot_block()
        .snapshot_id(snapshot)
        .block_index(index)
        .data_length(len)
        .checksum(checksum)
        .checksum_algorithm(ChecksumAlgorithm::ChecksumAlgorithmSha256)
        .block_data(ByteStream::from(data))
        .send()
        .await
        .map_err(sdk("PutSnapshotBlock"))
        .map_err(|e| e.context(format!("block {index}")))?;
    Ok(())
}

/// Runs on a blocking thread: finds `root.img` in the gzipped tar and sends
/// its non-zero blocks, each with its SHA-256 (base64).
fn read_blocks(path: &PathBuf, tx: &mpsc::Sender<Msg>) {
    let what = path.display().to_string();
    let send = |m: Msg| tx.blocking_send(m).is_ok();
    let result = (|| -> std::result::Result<(), String> {
        let file =
            std::fs::File::open(path).map_err(|e| format!("opening stemcell image {what}: {e}"))?;
        let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
        let mut archive = tar::Archive::new(gz);
        let entries = archive
            .entries()
            .map_err(|e| format!("stemcell image {what} is not a gzipped tar: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("reading stemcell image {what}: {e}"))?;
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.trim_start_matches("./") != "root.img" {
                continue;
            }
            let size = entry
                .header()
                .size()
                .map_err(|e| format!("root.img in {what}: bad size: {e}"))?;
            if !send(Msg::Size(size)) {
                return Ok(());
            }
            let mut index = 0i32;
            let mut read_total = 0u64;
            loop {
                let mut block = vec![0u8; BLOCK_SIZE];
                let n = read_full(&mut entry, &mut block)
                    .map_err(|e| format!("reading root.img from {what}: {e}"))?;
                if n == 0 {
                    break;
                }
                read_total += n as u64;
                // A partial last block is sent padded with zeros: EBS takes
                // whole blocks only.
                if block.iter().any(|b| *b != 0) {
                    let checksum =
                        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&block));
                    if !send(Msg::Block {
                        index,
                        data: block,
                        checksum,
                    }) {
                        return Ok(());
                    }
                }
                index += 1;
                if n < BLOCK_SIZE {
                    break;
                }
            }
            if read_total != size {
                return Err(format!(
                    "root.img in {what} is truncated: {read_total} of {size} bytes"
                ));
            }
            send(Msg::Done);
            return Ok(());
        }
        Err(format!("stemcell image {what} holds no root.img"))
    })();
    if let Err(e) = result {
        let _ = tx.blocking_send(Msg::Failed(e));
    }
}

/// Reads until `buf` is full or the input ends; answers the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(root_img: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let gz = flate2::write::GzEncoder::new(file.reopen().unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(root_img.len() as u64);
        header.set_cksum();
        tar.append_data(&mut header, "./root.img", root_img)
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        file
    }

    fn read_all(path: &Path) -> Vec<Msg> {
        let (tx, mut rx) = mpsc::channel(64);
        let path = path.to_owned();
        let reader = std::thread::spawn(move || read_blocks(&path, &tx));
        let mut out = Vec::new();
        while let Some(m) = rx.blocking_recv() {
            out.push(m);
        }
        reader.join().unwrap();
        out
    }

    #[test]
    fn skips_zero_blocks_and_pads_the_last_one() {
        let mut img = vec![0u8; 2 * BLOCK_SIZE + 100];
        img[2 * BLOCK_SIZE + 99] = 1;
        let file = image_with(&img);
        let msgs = read_all(file.path());
        assert!(matches!(msgs[0], Msg::Size(s) if s == img.len() as u64));
        match &msgs[1] {
            Msg::Block {
                index,
                data,
                checksum,
            } => {
                assert_eq!(*index, 2, "blocks 0 and 1 are zeros and skipped");
                assert_eq!(data.len(), BLOCK_SIZE, "padded to a whole block");
                assert_eq!(data[99], 1);
                let expected =
                    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data));
                assert_eq!(checksum, &expected);
            }
            _ => panic!("expected a block"),
        }
        assert!(matches!(msgs[2], Msg::Done));
        assert_eq!(msgs.len(), 3);
    }

    #[test]
    fn a_tar_without_root_img_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"plain text").unwrap();
        let msgs = read_all(file.path());
        assert!(
            matches!(&msgs[0], Msg::Failed(e) if e.contains("gzipped tar") || e.contains("reading"))
        );
    }
}
