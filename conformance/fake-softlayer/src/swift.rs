//! A minimal Swift object store, as SoftLayer object storage serves it to
//! image imports: v1 auth (`X-Auth-User`/`X-Auth-Key` → `X-Auth-Token`,
//! `X-Storage-Url`), containers, objects streamed to disk (never held in
//! memory), and dynamic large objects (a zero-byte manifest whose
//! `X-Object-Manifest: container/prefix` joins the segments under the
//! prefix). Static large objects are not served: the CPI does not use them.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One stored object.
#[derive(Clone, Debug)]
pub struct SwiftObject {
    /// Bytes stored in this object itself (0 for a manifest).
    pub bytes: u64,
    /// `container/prefix` for a dynamic large object manifest.
    pub manifest: Option<String>,
    /// Where its bytes are on disk.
    pub file: PathBuf,
}

/// The object store's state, inside the fake's [`crate::state::State`].
pub struct Swift {
    /// The object storage account (`SLOS278444-2`): the part of the user
    /// name before `:`, and the account in `swift://` URIs.
    pub account: String,
    /// The user name accepted at auth (`SLOS278444-2:fake-sl-user`).
    pub username: String,
    /// Tokens handed out so far (each a secret).
    pub tokens: Vec<String>,
    pub containers: BTreeMap<String, BTreeMap<String, SwiftObject>>,
    dir: Option<tempfile::TempDir>,
    next_file: u64,
}

impl Swift {
    pub fn new(account: String, username: String) -> Swift {
        Swift {
            account,
            username,
            tokens: Vec::new(),
            containers: BTreeMap::new(),
            dir: None,
            next_file: 0,
        }
    }

    /// A fresh file path for an object's bytes (the directory is made on
    /// first use and removed with the fake).
    pub fn new_file(&mut self) -> std::io::Result<PathBuf> {
        if self.dir.is_none() {
            self.dir = Some(tempfile::Builder::new().prefix("fake-swift-").tempdir()?);
        }
        self.next_file += 1;
        let dir = self.dir.as_ref().map(|d| d.path().to_owned());
        Ok(dir
            .unwrap_or_default()
            .join(format!("{:08}", self.next_file)))
    }

    pub fn object(&self, container: &str, name: &str) -> Option<&SwiftObject> {
        self.containers.get(container)?.get(name)
    }

    /// The segments a manifest joins, in name order.
    pub fn segments(&self, manifest: &str) -> Vec<(String, &SwiftObject)> {
        let Some((container, prefix)) = manifest.split_once('/') else {
            return Vec::new();
        };
        self.containers
            .get(container)
            .map(|c| {
                c.iter()
                    .filter(|(n, o)| n.starts_with(prefix) && o.manifest.is_none())
                    .map(|(n, o)| (n.clone(), o))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An object's whole size: its own bytes, or its segments' for a
    /// manifest. `None` when it does not exist.
    pub fn size(&self, container: &str, name: &str) -> Option<u64> {
        let o = self.object(container, name)?;
        Some(match &o.manifest {
            Some(m) => self.segments(m).iter().map(|(_, s)| s.bytes).sum(),
            None => o.bytes,
        })
    }

    /// Removes an object and its file; answers whether it existed.
    pub fn remove(&mut self, container: &str, name: &str) -> bool {
        match self
            .containers
            .get_mut(container)
            .and_then(|c| c.remove(name))
        {
            Some(o) => {
                let _ = std::fs::remove_file(&o.file);
                true
            }
            None => false,
        }
    }

    /// Everything stored, for inventories: `container/` for each container
    /// and `container/object` for each object.
    pub fn listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (c, objects) in &self.containers {
            out.push(format!("swift:{c}/"));
            out.extend(objects.keys().map(|o| format!("swift:{c}/{o}")));
        }
        out
    }

    /// Total bytes stored in objects (not counting manifests twice).
    pub fn stored_bytes(&self) -> u64 {
        self.containers
            .values()
            .flat_map(|c| c.values())
            .map(|o| o.bytes)
            .sum()
    }
}
