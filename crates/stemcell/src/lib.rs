//! Reading BOSH stemcells. The director unpacks the stemcell tarball and
//! hands `create_stemcell` the path of its `image` member plus the
//! manifest's `cloud_properties`; `create-env` style callers and the
//! conformance suite start from the tarball itself. Both are served here:
//! the manifest and light/heavy kind from a tarball, and `root.img` streamed
//! out of an `image` file (a gzipped tar) to any writer, block by block,
//! in memory that does not grow with the image.

mod error;
mod image;
mod manifest;
mod tarball;

pub use error::StemcellError;
pub use image::{
    root_img_blocks, root_img_size, spawn_root_img_blocks, stream_root_img, with_root_img, Block,
};
pub use manifest::{Kind, Manifest};
pub use tarball::{read_manifest, unpack, Unpacked};
