//! Stemcell tarballs for the checks, and unpacking them as the director does.
//!
//! A stemcell is a gzipped tar holding `stemcell.MF` (YAML: name, version,
//! operating_system, api_version, stemcell_formats, cloud_properties) and
//! `image`, itself a gzipped tar holding `root.img` (heavy) or a placeholder
//! (light). The director unpacks the outer tarball and passes
//! `create_stemcell` the path of `image` and the MF's `cloud_properties`;
//! [`unpack`] does the same.

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// What goes into the `image` member.
#[derive(Clone, Debug, PartialEq)]
pub enum Image {
    /// A gzipped tar of these members (usually just `root.img`).
    Heavy(Vec<(String, Vec<u8>)>),
    /// A light stemcell: the image is a placeholder, the cloud already has it.
    Light,
    /// Bytes that are not a gzipped tar at all.
    Corrupt,
    /// A heavy image cut off halfway: the gzip stream ends early.
    Truncated(Vec<(String, Vec<u8>)>),
}

/// One stemcell to build.
#[derive(Clone, Debug, PartialEq)]
pub struct StemcellSpec {
    pub name: String,
    pub version: String,
    pub operating_system: String,
    pub api_version: u32,
    pub stemcell_formats: Vec<String>,
    pub cloud_properties: Value,
    pub image: Image,
}

impl StemcellSpec {
    pub fn new(
        api_version: u32,
        formats: Vec<String>,
        cloud_properties: Value,
        image: Image,
    ) -> Self {
        StemcellSpec {
            name: "bosh-conformance-ubuntu-jammy-go_agent".into(),
            version: "1.0".into(),
            operating_system: "ubuntu-jammy".into(),
            api_version,
            stemcell_formats: formats,
            cloud_properties,
            image,
        }
    }

    /// `stemcell.MF`: block YAML for scalars and lists; `cloud_properties`
    /// as a JSON flow mapping, which is valid YAML as well.
    pub fn manifest(&self) -> String {
        let mut mf = String::from("---\n");
        let _ = writeln!(mf, "name: {}", self.name);
        let _ = writeln!(mf, "version: '{}'", self.version);
        let _ = writeln!(mf, "operating_system: {}", self.operating_system);
        let _ = writeln!(mf, "api_version: {}", self.api_version);
        mf.push_str("stemcell_formats:\n");
        for f in &self.stemcell_formats {
            let _ = writeln!(mf, "- {f}");
        }
        let _ = writeln!(mf, "cloud_properties: {}", self.cloud_properties);
        mf
    }

    /// Writes the stemcell tarball to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let image = image_bytes(&self.image)?;
        let file = std::fs::File::create(path)?;
        let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
        append(&mut tar, "stemcell.MF", self.manifest().as_bytes())?;
        append(&mut tar, "image", &image)?;
        tar.into_inner()?.finish()?.flush()
    }
}

/// The default heavy image: a 1 MiB `root.img` of varied bytes.
pub fn default_image_members() -> Vec<(String, Vec<u8>)> {
    let mut state = 0x2545_f491_u32;
    let data = (0..1 << 20)
        .map(|_| {
            // xorshift: cheap bytes that do not compress to nothing
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    vec![("root.img".into(), data)]
}

fn image_bytes(image: &Image) -> std::io::Result<Vec<u8>> {
    Ok(match image {
        Image::Heavy(members) => gzipped_tar(members)?,
        Image::Light => Vec::new(),
        Image::Corrupt => b"this is not a gzipped tar: the stemcell image is corrupt\n".repeat(64),
        Image::Truncated(members) => {
            let mut full = gzipped_tar(members)?;
            full.truncate(full.len() / 2);
            full
        }
    })
}

fn gzipped_tar(members: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, data) in members {
        append(&mut tar, name, data)?;
    }
    tar.into_inner()?.finish()
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

/// An unpacked stemcell: what the director hands `create_stemcell`.
#[derive(Clone, Debug, PartialEq)]
pub struct Unpacked {
    pub image_path: PathBuf,
    pub cloud_properties: Value,
    pub api_version: Option<u32>,
}

/// Unpacks `tarball` into `dir` and reads its manifest.
pub fn unpack(tarball: &Path, dir: &Path) -> Result<Unpacked, String> {
    let file =
        std::fs::File::open(tarball).map_err(|e| format!("opening {}: {e}", tarball.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    archive
        .unpack(dir)
        .map_err(|e| format!("unpacking {}: {e}", tarball.display()))?;
    let mut mf = String::new();
    std::fs::File::open(dir.join("stemcell.MF"))
        .and_then(|mut f| f.read_to_string(&mut mf))
        .map_err(|e| format!("reading stemcell.MF: {e}"))?;
    let manifest = parse_manifest(&mf)?;
    let image_path = dir.join("image");
    if !image_path.exists() {
        return Err("the stemcell has no image member".into());
    }
    Ok(Unpacked {
        image_path,
        cloud_properties: manifest.cloud_properties,
        api_version: manifest.api_version,
    })
}

struct Manifest {
    cloud_properties: Value,
    api_version: Option<u32>,
}

/// Reads the keys the director uses from an MF written by [`StemcellSpec`]
/// (top-level `key: value` lines; `cloud_properties` as a flow mapping).
fn parse_manifest(mf: &str) -> Result<Manifest, String> {
    let mut cloud_properties = Value::Object(Default::default());
    let mut api_version = None;
    for line in mf.lines() {
        if let Some(v) = line.strip_prefix("cloud_properties:") {
            let v = v.trim();
            if !v.is_empty() {
                cloud_properties = serde_json::from_str(v)
                    .map_err(|e| format!("stemcell.MF cloud_properties: {e}"))?;
            }
        } else if let Some(v) = line.strip_prefix("api_version:") {
            api_version = v.trim().trim_matches('\'').parse().ok();
        }
    }
    Ok(Manifest {
        cloud_properties,
        api_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_a_heavy_stemcell() {
        let dir = tempfile::tempdir().unwrap();
        let spec = StemcellSpec::new(
            2,
            vec!["warden-tar".into()],
            json!({"infrastructure": "warden", "nested": {"a": [1]}}),
            Image::Heavy(vec![("root.img".into(), b"disk".to_vec())]),
        );
        let tgz = dir.path().join("s.tgz");
        spec.write(&tgz).unwrap();
        let out = dir.path().join("unpacked");
        std::fs::create_dir(&out).unwrap();
        let u = unpack(&tgz, &out).unwrap();
        assert_eq!(
            u.cloud_properties,
            json!({"infrastructure": "warden", "nested": {"a": [1]}})
        );
        assert_eq!(u.api_version, Some(2));
        let mut inner =
            tar::Archive::new(GzDecoder::new(std::fs::File::open(&u.image_path).unwrap()));
        let mut entry = inner.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("root.img"));
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        assert_eq!(data, b"disk");
    }

    #[test]
    fn truncated_and_corrupt_images_do_not_unpack() {
        for image in [Image::Corrupt, Image::Truncated(default_image_members())] {
            let bytes = image_bytes(&image).unwrap();
            let mut inner = tar::Archive::new(GzDecoder::new(&bytes[..]));
            let all = inner.entries().and_then(|es| {
                es.map(|e| e.and_then(|mut e| std::io::copy(&mut e, &mut std::io::sink())))
                    .collect::<Result<Vec<_>, _>>()
            });
            assert!(all.is_err(), "{image:?} unpacked");
        }
    }
}
