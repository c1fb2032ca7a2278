//! Stemcells: the image (a gzipped tar of a root filesystem) unpacked into
//! `StemcellsDir/<cid>`, streamed straight from the file, never copied first.

use crate::cloud::Warden;
use cpi::{CreateStemcell, Error, Result, StemcellCid};
use std::path::PathBuf;

impl Warden {
    pub fn stemcell_dir(&self, cid: &StemcellCid) -> Result<PathBuf> {
        Ok(self
            .config
            .actions
            .stemcells_dir
            .join(crate::host::entry_name("stemcell", cid.as_str())?))
    }
}

/// Unpacks a tar stream into `dir`, entry by entry. Owners are kept where
/// the header has them (a stemcell's files belong to vcap and root); headers
/// without numeric owners (hand-made tars) leave the file to the caller.
fn unpack(stream: impl std::io::Read, dir: &std::path::Path) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(stream);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        if !entry.unpack_in(dir)? {
            continue;
        }
        let h = entry.header();
        if let (Ok(uid), Ok(gid)) = (h.uid(), h.gid()) {
            if uid != 0 || gid != 0 {
                std::os::unix::fs::lchown(dir.join(&path), Some(uid as u32), Some(gid as u32))?;
            }
        }
    }
    Ok(())
}

impl cpi::Stemcells for Warden {
    async fn create_stemcell(&self, args: CreateStemcell) -> Result<StemcellCid> {
        let cid = StemcellCid::new(uuid::Uuid::new_v4().to_string());
        let dir = self.stemcell_dir(&cid)?;
        let image = args.image_path.clone();
        let target = dir.clone();
        let expand = self.config.actions.expand_stemcell_tarball;
        let unpacked = (|| -> std::result::Result<(), String> {
            let file = std::fs::File::open(&image)
                .map_err(|e| format!("opening image {}: {e}", image.display()))?;
            std::fs::create_dir_all(&self.config.actions.stemcells_dir).map_err(|e| {
                format!(
                    "making {}: {e}",
                    self.config.actions.stemcells_dir.display()
                )
            })?;
            let gz = flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
            if expand {
                std::fs::create_dir_all(&target)
                    .map_err(|e| format!("making {}: {e}", target.display()))?;
                unpack(gz, &target).map_err(|e| format!("unpacking image {}: {e}", image.display()))
            } else {
                // ExpandStemcellTarball false: the image only gunzipped, a
                // tarball the Garden image plugin (GrootFS) takes as it is.
                let mut gz = gz;
                let mut out = std::fs::File::create(&target)
                    .map_err(|e| format!("creating {}: {e}", target.display()))?;
                std::io::copy(&mut gz, &mut out)
                    .map_err(|e| format!("gunzipping image {}: {e}", image.display()))?;
                out.sync_all()
                    .map_err(|e| format!("writing {}: {e}", target.display()))
            }
        })();
        if let Err(e) = unpacked {
            let _ = crate::reclaim::remove_in_place(&dir);
            return Err(Error::cloud(format!("create_stemcell: {e}")));
        }
        tracing::info!(
            "stemcell {cid} {} into {}",
            if expand { "unpacked" } else { "gunzipped" },
            dir.display()
        );
        Ok(cid)
    }

    async fn delete_stemcell(&self, cid: StemcellCid) -> Result<()> {
        let dir = self.stemcell_dir(&cid)?;
        crate::reclaim::delete(&self.config.actions.stemcells_dir, &dir)
            .map(drop)
            .map_err(|e| Error::cloud(format!("delete_stemcell: removing {}: {e}", dir.display())))
    }
}
