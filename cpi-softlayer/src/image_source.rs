//! The disk image in a heavy stemcell's `image` file, read in blocks on a
//! thread of its own (bounded channel: memory does not grow with the
//! image). Two layouts are read: a gzipped tar holding `root.img` (what the
//! stemcell crate reads, and what BOSH builds) and a gzipped disk image with
//! no tar around it (what the Go CPI read: it gunzipped `image` and
//! uploaded the result as `<name>.vhd`).

use ::stemcell::{Block, StemcellError};
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc::Receiver;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A gzipped tar: `root.img` is streamed out of it.
    Tar,
    /// A gzipped disk image.
    Gzip,
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> StemcellError {
    StemcellError::Corrupt {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Reads the start of the image: which layout it is, or why it is no
/// image at all (before anything is made in the cloud).
pub fn probe(path: &Path) -> Result<Layout, StemcellError> {
    let file = std::fs::File::open(path).map_err(|e| StemcellError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let mut head = Vec::with_capacity(512);
    MultiGzDecoder::new(file)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| corrupt(path, format!("not a gzipped image: {e}")))?;
    if head.is_empty() {
        return Err(corrupt(path, "the gzipped image is empty"));
    }
    // A POSIX/GNU tar header has "ustar" at offset 257.
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        Ok(Layout::Tar)
    } else {
        Ok(Layout::Gzip)
    }
}

/// The image's blocks of `block_size` bytes, at most `in_flight` waiting.
/// The last message is an error if the image is corrupt or truncated.
pub fn spawn_blocks(
    path: PathBuf,
    layout: Layout,
    block_size: usize,
    in_flight: usize,
) -> Receiver<Result<Block, StemcellError>> {
    if layout == Layout::Tar {
        return ::stemcell::spawn_root_img_blocks(path, block_size, in_flight);
    }
    let (tx, rx) = tokio::sync::mpsc::channel(in_flight.max(1));
    std::thread::spawn(move || {
        if let Err(e) = gzip_blocks(&path, block_size, &tx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

fn gzip_blocks(
    path: &Path,
    block_size: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Block, StemcellError>>,
) -> Result<(), StemcellError> {
    let file = std::fs::File::open(path).map_err(|e| StemcellError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let mut reader = MultiGzDecoder::new(std::io::BufReader::new(file));
    let (mut offset, mut index) = (0u64, 0u64);
    loop {
        let mut data = vec![0u8; block_size];
        let mut filled = 0;
        while filled < block_size {
            let n = reader
                .read(&mut data[filled..])
                .map_err(|e| corrupt(path, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(());
        }
        data.truncate(filled);
        let block = Block {
            index,
            offset,
            data,
            // Unknown until the end: gzip does not say.
            image_size: 0,
        };
        if tx.blocking_send(Ok(block)).is_err() {
            // The upload stopped reading: nothing more to do.
            return Ok(());
        }
        offset += filled as u64;
        index += 1;
        if filled < block_size {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn collect(path: PathBuf, layout: Layout) -> Result<Vec<u8>, StemcellError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut rx = spawn_blocks(path, layout, 1000, 2);
            let mut all = Vec::new();
            while let Some(b) = rx.recv().await {
                all.extend(b?.data);
            }
            Ok(all)
        })
    }

    #[test]
    fn reads_a_gzipped_disk_image_without_tar() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let path = dir.path().join("image");
        std::fs::write(&path, gz(&data)).unwrap();
        assert_eq!(probe(&path).unwrap(), Layout::Gzip);
        assert_eq!(collect(path.clone(), Layout::Gzip).unwrap(), data);
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() / 2]).unwrap();
        assert!(collect(path, Layout::Gzip).is_err());
    }

    #[test]
    fn refuses_what_is_not_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image");
        std::fs::write(&path, b"plain text, no image").unwrap();
        let e = probe(&path).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains("gzip"), "{e}");
        std::fs::write(&path, gz(b"")).unwrap();
        assert!(probe(&path).unwrap_err().to_string().contains("empty"));
    }
}
