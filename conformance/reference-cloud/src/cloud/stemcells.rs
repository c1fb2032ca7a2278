//! Stemcells: a heavy image is unpacked into `stemcells/<cid>`; a light one
//! (`cloud_properties.image_id`) names an image already there, and its cid
//! carries a ` light` suffix so that deleting it leaves the image alone.

use super::{io, Reference};
use crate::config::Break;
use cpi::{CreateStemcell, Error, Result, StemcellCid};

pub(crate) const LIGHT_SUFFIX: &str = " light";

/// The image a stemcell cid stands for.
pub(crate) fn image_of(cid: &str) -> &str {
    cid.strip_suffix(LIGHT_SUFFIX).unwrap_or(cid)
}

impl cpi::Stemcells for Reference {
    async fn create_stemcell(&self, args: CreateStemcell) -> Result<StemcellCid> {
        if let Some(image) = args.cloud_properties.get("image_id") {
            let image = image.as_str().ok_or_else(|| {
                Error::cpi("create_stemcell: cloud_properties.image_id: expected a string")
            })?;
            self.request("describe_image").await?;
            if !self.store.stemcell_dir(image).is_dir() {
                return Err(Error::cloud(format!(
                    "create_stemcell: light stemcell image '{image}' not found"
                )));
            }
            return Ok(StemcellCid::new(format!("{image}{LIGHT_SUFFIX}")));
        }
        self.request("import_image").await?;
        let cid = format!("sc-{}", uuid::Uuid::new_v4().simple());
        let dir = self.store.stemcell_dir(&cid);
        io(
            "making the stemcell directory",
            std::fs::create_dir_all(&dir),
        )?;
        let unpacked = std::fs::File::open(&args.image_path).and_then(|f| {
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
            archive.unpack(&dir)
        });
        if let Err(e) = unpacked {
            if !self.broken(Break::StemcellLeaksOnBadImage) {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(Error::cloud(format!(
                "create_stemcell: unpacking the stemcell image {}: {e}",
                args.image_path.display()
            )));
        }
        Ok(StemcellCid::new(cid))
    }

    async fn delete_stemcell(&self, cid: StemcellCid) -> Result<()> {
        if cid.as_str().ends_with(LIGHT_SUFFIX) {
            return Ok(());
        }
        self.request("delete_image").await?;
        match std::fs::remove_dir_all(self.store.stemcell_dir(cid.as_str())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                io(format!("deleting stemcell {cid}"), Err(e))
            }
            _ => Ok(()),
        }
    }
}
