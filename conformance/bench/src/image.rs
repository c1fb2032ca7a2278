//! Generated stemcell images for the import benchmarks: a `root.img` shaped
//! like a real one (data and long runs of zeros) in an `image` tgz.

use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `dir/image` holding a `root.img` of `size` bytes: in every 4 MiB,
/// 1 MiB of incompressible bytes and 3 MiB of zeros.
pub fn generate(dir: &Path, size: u64) -> std::io::Result<PathBuf> {
    let path = dir.join("image");
    let gz = GzEncoder::new(std::fs::File::create(&path)?, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(
        &mut header,
        "root.img",
        Pattern {
            left: size,
            pos: 0,
            seed: 0x9e3779b97f4a7c15,
        },
    )?;
    tar.into_inner()?.finish()?.flush()?;
    Ok(path)
}

struct Pattern {
    left: u64,
    pos: u64,
    seed: u64,
}

impl std::io::Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for b in &mut buf[..n] {
            *b = if self.pos % (4 << 20) < (1 << 20) {
                // xorshift: fast, incompressible enough
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                self.seed as u8
            } else {
                0
            };
            self.pos += 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}
