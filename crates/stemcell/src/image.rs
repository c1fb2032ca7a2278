//! `root.img` streamed out of a stemcell's `image` file (a gzipped tar),
//! never unpacked to disk, in memory bounded by one block.

use crate::tarball::{corrupt, each_member, is_file};
use crate::StemcellError;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Calls `f` with a reader of `root.img` and its size in bytes.
pub fn with_root_img<T>(
    image: &Path,
    f: impl FnOnce(&mut dyn Read, u64) -> std::io::Result<T>,
) -> Result<T, StemcellError> {
    let mut f = Some(f);
    let found = each_member(image, |entry, name| {
        if !(name == "root.img" || name.ends_with("/root.img") || name == "disk.raw") {
            return Ok(None);
        }
        let kind = entry.header().entry_type();
        if !is_file(kind) {
            return Err(corrupt(
                image,
                format!("{name} is not a regular file (tar type {:?})", kind),
            ));
        }
        let size = entry.size();
        let f = f.take().expect("called once: the loop stops here");
        f(entry, size).map(Some).map_err(|e| corrupt(image, e))
    })?;
    found.ok_or_else(|| StemcellError::Missing {
        path: image.to_owned(),
        member: "root.img",
    })
}

/// The size of `root.img`, read from its tar header: a cheap check that the
/// image is usable before anything is made in the cloud.
pub fn root_img_size(image: &Path) -> Result<u64, StemcellError> {
    with_root_img(image, |_, size| Ok(size))
}

/// Copies `root.img` to `out`; answers the bytes written.
pub fn stream_root_img(image: &Path, out: &mut dyn Write) -> Result<u64, StemcellError> {
    with_root_img(image, |reader, size| {
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            done += n as u64;
        }
        if done != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("root.img ends after {done} of {size} bytes"),
            ));
        }
        Ok(done)
    })
}

/// One block of `root.img`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub index: u64,
    pub offset: u64,
    /// `block_size` bytes, fewer for the last block.
    pub data: Vec<u8>,
    /// The whole image's size.
    pub image_size: u64,
}

impl Block {
    /// All zero: cloud imports that track blocks (EBS direct) skip these.
    pub fn is_zero(&self) -> bool {
        self.data.iter().all(|b| *b == 0)
    }
}

/// Hands `root.img` to `sink` in blocks of `block_size` bytes, in order.
pub fn root_img_blocks(
    image: &Path,
    block_size: usize,
    mut sink: impl FnMut(Block) -> std::io::Result<()>,
) -> Result<u64, StemcellError> {
    with_root_img(image, |reader, size| {
        let mut offset = 0u64;
        let mut index = 0u64;
        loop {
            let mut data = vec![0u8; block_size];
            let mut filled = 0;
            while filled < block_size {
                let n = reader.read(&mut data[filled..])?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            data.truncate(filled);
            sink(Block {
                index,
                offset,
                data,
                image_size: size,
            })?;
            offset += filled as u64;
            index += 1;
            if filled < block_size {
                break;
            }
        }
        if offset != size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("root.img ends after {offset} of {size} bytes"),
            ));
        }
        Ok(offset)
    })
}

/// Reads blocks on a thread of its own and hands them to async code through
/// a bounded channel: at most `in_flight` blocks are in memory at once.
/// The last message is an error if the image is corrupt.
pub fn spawn_root_img_blocks(
    image: PathBuf,
    block_size: usize,
    in_flight: usize,
) -> tokio::sync::mpsc::Receiver<Result<Block, StemcellError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(in_flight.max(1));
    std::thread::spawn(move || {
        let result = root_img_blocks(&image, block_size, |block| {
            tx.blocking_send(Ok(block))
                .map_err(|_| std::io::Error::other("the consumer stopped reading"))
        });
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    /// An `image` file: a gzipped tar holding `root.img` of `bytes`.
    pub(crate) fn make_image(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("image");
        let gz = GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, "root.img", bytes).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                if (i / 4096) % 3 == 0 {
                    0
                } else {
                    (i % 251) as u8
                }
            })
            .collect()
    }

    #[test]
    fn streams_root_img_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = pattern(3 * 1024 * 1024 + 17);
        let image = make_image(dir.path(), &bytes);
        let mut out = Vec::new();
        assert_eq!(
            stream_root_img(&image, &mut out).unwrap(),
            bytes.len() as u64
        );
        assert_eq!(out, bytes);
    }

    #[test]
    fn blocks_cover_the_image_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = pattern(40_000);
        let image = make_image(dir.path(), &bytes);
        let mut seen = Vec::new();
        root_img_blocks(&image, 16_384, |b| {
            assert_eq!(b.offset, b.index * 16_384);
            seen.extend_from_slice(&b.data);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, bytes);
    }

    #[test]
    fn size_comes_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let image = make_image(dir.path(), &pattern(123_457));
        assert_eq!(root_img_size(&image).unwrap(), 123_457);
    }

    #[test]
    fn a_truncated_image_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let image = make_image(dir.path(), &pattern(2_000_000));
        let full = std::fs::read(&image).unwrap();
        std::fs::write(&image, &full[..full.len() / 2]).unwrap();
        let e = stream_root_img(&image, &mut std::io::sink()).unwrap_err();
        assert!(matches!(e, StemcellError::Corrupt { .. }), "{e}");
        std::fs::write(&image, b"not an image at all").unwrap();
        assert!(stream_root_img(&image, &mut std::io::sink()).is_err());
    }

    #[test]
    fn async_blocks_arrive_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = pattern(100_000);
        let image = make_image(dir.path(), &bytes);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let mut rx = spawn_root_img_blocks(image, 8192, 2);
            let mut all = Vec::new();
            while let Some(b) = rx.recv().await {
                all.extend_from_slice(&b.unwrap().data);
            }
            all
        });
        assert_eq!(got, bytes);
    }
}
