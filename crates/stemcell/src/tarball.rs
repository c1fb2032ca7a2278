//! The stemcell tarball: `stemcell.MF`, `image`, and the rest.

use crate::{Manifest, StemcellError};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) fn member_name(path: &Path) -> String {
    path.to_string_lossy().trim_start_matches("./").to_owned()
}

/// The most a stemcell's tar may hold in metadata before a member (pax
/// extensions, GNU long names, sparse maps): the tar reader keeps these in
/// memory, so a hostile archive could otherwise make it allocate gigabytes.
pub const MAX_METADATA_BYTES: u64 = 1 << 20;

/// The largest `stemcell.MF` read (real ones are well under 4 KiB).
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Shared between the reader and the loop over members: how many bytes the
/// tar reader may still read. Bounded while it reads headers, unbounded
/// while a member's data is streamed.
#[derive(Clone)]
pub(crate) struct Meter(Arc<AtomicU64>);

impl Meter {
    /// Before asking the tar reader for the next member.
    pub(crate) fn headers(&self) {
        // Two header blocks and a little padding on top of the metadata.
        self.0.store(MAX_METADATA_BYTES + 4096, Ordering::Relaxed);
    }
    /// While a member's data is read.
    pub(crate) fn data(&self) {
        self.0.store(u64::MAX, Ordering::Relaxed);
    }
}

pub(crate) struct Metered {
    inner: Box<dyn Read>,
    left: Meter,
}

impl Read for Metered {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.0.load(Ordering::Relaxed);
        if left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("more than {MAX_METADATA_BYTES} bytes of tar metadata before a member"),
            ));
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if left != u64::MAX {
            self.left.0.store(left - n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Opens a tar, gzipped or not (stemcells are gzipped in practice; several
/// gzip members one after another, as `pigz` or `cat a.gz b.gz` write
/// them, are one stream).
pub(crate) fn open(path: &Path) -> Result<(tar::Archive<Metered>, Meter), StemcellError> {
    let io = |source| StemcellError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let gz = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let inner: Box<dyn Read> = if gz {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let meter = Meter(Arc::new(AtomicU64::new(0)));
    meter.headers();
    let reader = Metered {
        inner,
        left: meter.clone(),
    };
    Ok((tar::Archive::new(reader), meter))
}

/// Calls `f` with each member in turn, with the tar reader's metadata
/// bounded; a member `f` leaves unread is skipped. `f` answers `Some` to stop.
pub(crate) fn each_member<T>(
    path: &Path,
    mut f: impl FnMut(&mut tar::Entry<'_, Metered>, &str) -> Result<Option<T>, StemcellError>,
) -> Result<Option<T>, StemcellError> {
    let (mut archive, meter) = open(path)?;
    let mut entries = archive.entries().map_err(|e| corrupt(path, e))?;
    loop {
        meter.headers();
        let Some(entry) = entries.next() else {
            return Ok(None);
        };
        let mut entry = entry.map_err(|e| corrupt(path, e))?;
        meter.data();
        let name = member_name(&entry.path().map_err(|e| corrupt(path, e))?);
        if let Some(done) = f(&mut entry, &name)? {
            return Ok(Some(done));
        }
        std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| corrupt(path, e))?;
    }
}

pub(crate) fn corrupt(path: &Path, e: impl std::fmt::Display) -> StemcellError {
    StemcellError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// A member the reader takes data from: a file, not a link or a device.
pub(crate) fn is_file(kind: tar::EntryType) -> bool {
    kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_hard_link() {
        "a hard link"
    } else if kind.is_character_special() || kind.is_block_special() {
        "a device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else {
        "not a regular file"
    }
}

/// Reads `stemcell.MF` from a stemcell tarball without unpacking the image.
pub fn read_manifest(tarball: &Path) -> Result<Manifest, StemcellError> {
    let found = each_member(tarball, |entry, name| {
        if name != "stemcell.MF" {
            return Ok(None);
        }
        let kind = entry.header().entry_type();
        if !is_file(kind) {
            return Err(corrupt(
                tarball,
                format!("stemcell.MF is {}", kind_name(kind)),
            ));
        }
        Ok(Some(read_manifest_member(tarball, entry)?))
    })?;
    found.ok_or_else(|| StemcellError::Missing {
        path: tarball.to_owned(),
        member: "stemcell.MF",
    })
}

fn read_manifest_member(tarball: &Path, r: &mut dyn Read) -> Result<Manifest, StemcellError> {
    let mut bytes = Vec::new();
    r.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt(tarball, e))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(StemcellError::BadManifest {
            path: tarball.to_owned(),
            reason: format!("it is larger than {MAX_MANIFEST_BYTES} bytes"),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| StemcellError::BadManifest {
        path: tarball.to_owned(),
        reason: format!("it is not UTF-8: {e}"),
    })?;
    Manifest::parse(&text).map_err(|reason| StemcellError::BadManifest {
        path: tarball.to_owned(),
        reason,
    })
}

/// A stemcell unpacked as the director unpacks it.
#[derive(Clone, Debug)]
pub struct Unpacked {
    pub manifest: Manifest,
    /// The `image` member's path in `dir`.
    pub image: PathBuf,
}

/// Where a member goes under `dir`: only plain relative names (`a/b`, `./a`);
/// an absolute name, `..` or anything else that could leave `dir` is refused.
fn destination(dir: &Path, name: &Path) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    let mut any = false;
    for c in name.components() {
        match c {
            Component::Normal(part) => {
                out.push(part);
                any = true;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    any.then_some(out)
}

/// Refuses to write through a symbolic link already in `dir` (the archive
/// cannot make one: links are refused).
fn no_links_between(dir: &Path, target: &Path) -> std::io::Result<()> {
    let rel = target.strip_prefix(dir).map_err(std::io::Error::other)?;
    let mut at = dir.to_path_buf();
    for part in rel.components() {
        at.push(part);
        if let Ok(meta) = std::fs::symlink_metadata(&at) {
            if meta.file_type().is_symlink() {
                return Err(std::io::Error::other(format!(
                    "{} is a symbolic link",
                    at.display()
                )));
            }
        }
    }
    Ok(())
}

/// Unpacks the tarball's members into `dir` (the `image` stays a gzipped
/// tar: `create_stemcell` streams `root.img` out of it). Only regular files
/// and directories with plain relative names are written, never outside
/// `dir`: links, devices, absolute names and `..` are refused by name.
pub fn unpack(tarball: &Path, dir: &Path) -> Result<Unpacked, StemcellError> {
    let io = |source| StemcellError::Io {
        path: tarball.to_owned(),
        source,
    };
    each_member(tarball, |entry, name| {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(None);
        }
        let raw = entry.path().map_err(|e| corrupt(tarball, e))?.into_owned();
        let Some(target) = destination(dir, &raw) else {
            if raw.components().all(|c| matches!(c, Component::CurDir)) && kind.is_dir() {
                return Ok(None); // the archive's own "./"
            }
            return Err(corrupt(
                tarball,
                format!("member '{name}' would be written outside the destination"),
            ));
        };
        no_links_between(dir, &target).map_err(|e| corrupt(tarball, e))?;
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(io)?;
            return Ok(None);
        }
        if !is_file(kind) || kind.is_gnu_sparse() {
            let what = if kind.is_gnu_sparse() {
                "a sparse file"
            } else {
                kind_name(kind)
            };
            return Err(corrupt(
                tarball,
                format!("member '{name}' is {what}: a stemcell holds regular files only"),
            ));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        if target.is_dir() {
            return Err(corrupt(
                tarball,
                format!("member '{name}' is a file where a directory was unpacked"),
            ));
        }
        let mut out = File::create(&target).map_err(io)?;
        std::io::copy(entry, &mut out).map_err(|e| corrupt(tarball, e))?;
        Ok(None::<()>)
    })?;
    let manifest_path = dir.join("stemcell.MF");
    let mut file = File::open(&manifest_path).map_err(|_| StemcellError::Missing {
        path: tarball.to_owned(),
        member: "stemcell.MF",
    })?;
    let manifest = read_manifest_member(tarball, &mut file)?;
    let image = dir.join("image");
    if !image.is_file() {
        return Err(StemcellError::Missing {
            path: tarball.to_owned(),
            member: "image",
        });
    }
    Ok(Unpacked { manifest, image })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use flate2::write::GzEncoder;

    fn tarball(dir: &Path, manifest: &str, image: &[u8]) -> PathBuf {
        let path = dir.join("stemcell.tgz");
        let gz = GzEncoder::new(File::create(&path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in [("stemcell.MF", manifest.as_bytes()), ("image", image)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn reads_and_unpacks_like_the_director() {
        let dir = tempfile::tempdir().unwrap();
        let t = tarball(
            dir.path(),
            "name: light\nversion: 1\nstemcell_formats: [openstack-light]\ncloud_properties: {image_id: img-1}\n",
            b"",
        );
        let m = read_manifest(&t).unwrap();
        assert_eq!((m.name.as_str(), m.kind()), ("light", Kind::Light));
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let u = unpack(&t, &out).unwrap();
        assert_eq!(u.image, out.join("image"));
        assert_eq!(u.manifest.cloud_properties["image_id"], "img-1");
    }

    #[test]
    fn names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let t = tarball(dir.path(), "version: 1\n", b"");
        let e = read_manifest(&t).unwrap_err();
        assert!(e.to_string().contains("stemcell.MF is not valid"), "{e}");
        let e = read_manifest(&dir.path().join("nope.tgz")).unwrap_err();
        assert!(e.to_string().contains("nope.tgz"), "{e}");
    }
}
