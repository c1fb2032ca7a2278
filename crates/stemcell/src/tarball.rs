//! The stemcell tarball: `stemcell.MF`, `image`, and the rest.

use crate::{Manifest, StemcellError};
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub(crate) fn member_name(path: &Path) -> String {
    path.to_string_lossy().trim_start_matches("./").to_owned()
}

/// Opens a tar, gzipped or not (stemcells are gzipped in practice).
pub(crate) fn open(path: &Path) -> Result<tar::Archive<Box<dyn Read>>, StemcellError> {
    let io = |source| StemcellError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 2];
    let gz = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let inner: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(BufReader::with_capacity(1 << 20, file)))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    Ok(tar::Archive::new(inner))
}

pub(crate) fn corrupt(path: &Path, e: impl std::fmt::Display) -> StemcellError {
    StemcellError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Reads `stemcell.MF` from a stemcell tarball without unpacking the image.
pub fn read_manifest(tarball: &Path) -> Result<Manifest, StemcellError> {
    let mut archive = open(tarball)?;
    for entry in archive.entries().map_err(|e| corrupt(tarball, e))? {
        let mut entry = entry.map_err(|e| corrupt(tarball, e))?;
        let name = member_name(&entry.path().map_err(|e| corrupt(tarball, e))?);
        if name == "stemcell.MF" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| corrupt(tarball, e))?;
            return Manifest::parse(&text).map_err(|reason| StemcellError::BadManifest {
                path: tarball.to_owned(),
                reason,
            });
        }
    }
    Err(StemcellError::Missing {
        path: tarball.to_owned(),
        member: "stemcell.MF",
    })
}

/// A stemcell unpacked as the director unpacks it.
#[derive(Clone, Debug)]
pub struct Unpacked {
    pub manifest: Manifest,
    /// The `image` member's path in `dir`.
    pub image: PathBuf,
}

/// Unpacks the tarball's top-level members into `dir` (the `image` stays a
/// gzipped tar: `create_stemcell` streams `root.img` out of it).
pub fn unpack(tarball: &Path, dir: &Path) -> Result<Unpacked, StemcellError> {
    let mut archive = open(tarball)?;
    archive.set_overwrite(true);
    archive.unpack(dir).map_err(|e| corrupt(tarball, e))?;
    let manifest_path = dir.join("stemcell.MF");
    let text = std::fs::read_to_string(&manifest_path).map_err(|_| StemcellError::Missing {
        path: tarball.to_owned(),
        member: "stemcell.MF",
    })?;
    let manifest = Manifest::parse(&text).map_err(|reason| StemcellError::BadManifest {
        path: tarball.to_owned(),
        reason,
    })?;
    let image = dir.join("image");
    if !image.exists() {
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
