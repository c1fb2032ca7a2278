//! New persistent disks formatted from a template: `mkfs.ext4` runs once per
//! disk size, into a hidden image under `DisksDir/.templates`, and each new
//! disk of that size is a copy of the image's written blocks with a fresh
//! filesystem UUID and directory hash seed.
//!
//! Why: on a Garden host mkfs costs a process start, its library loading
//! and an fsync per disk, and its layout leaves a dozen separate extents in
//! the disk file, each of which the host file system frees again, slowly,
//! when the disk is deleted. The copy writes the same bytes as mkfs but
//! merges the small holes between them, so a disk file has five extents.
//!
//! The template is made with `metadata_csum_seed`: every metadata checksum
//! is then seeded from a field of its own instead of the UUID, so a new UUID
//! only changes the superblocks (the primary, its backups) and the journal
//! superblock, whose checksums are rewritten here. Anything about a template
//! this module does not expect (a feature, a layout, a bad checksum) makes
//! it unusable, and the caller formats with mkfs as before.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The hidden directory of templates inside DisksDir: a cache, never a disk
/// (disk ids starting with a dot are refused).
pub const TEMPLATES_DIR: &str = ".templates";

/// Names the template format; bumped when the mkfs options below change so
/// that an older template is not taken for a newer one.
const FORMAT: &str = "ext4-v1";

/// mkfs options of a template: checksums seeded apart from the UUID; two
/// backup superblocks (group 1 and the last group) rather than one per
/// power of 3, 5 and 7, which are as many more extents; and a file that is
/// all zeros already, so neither the journal nor the inode tables are
/// written.
const TEMPLATE_MKFS_ARGS: [&str; 6] = [
    "-F",
    "-q",
    "-O",
    "metadata_csum_seed,sparse_super2",
    "-E",
    "nodiscard,assume_storage_prezeroed=1,num_backup_sb=2",
];

/// Written runs of the template closer than this are copied as one, holes
/// included: a few zero blocks cost less than an extent.
const MERGE_GAP: u64 = 64 * 1024;

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    NotUsable { path: PathBuf, why: &'static str },
    #[error("making template {path}: {message}")]
    Mkfs { path: PathBuf, message: String },
}

/// Where the template for disks of `size` bytes is kept.
pub fn template_path(disks_dir: &Path, size: u64) -> PathBuf {
    disks_dir
        .join(TEMPLATES_DIR)
        .join(format!("{FORMAT}-{size}.img"))
}

/// The template for disks of `size` bytes: read from its file, or made
/// first if there is none (or the one there is unusable).
pub fn template_for(disks_dir: &Path, size: u64) -> Result<Template, TemplateError> {
    let path = template_path(disks_dir, size);
    match Template::load(&path, size) {
        Ok(t) => Ok(t),
        Err(e) => {
            if !matches!(&e, TemplateError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
            {
                tracing::warn!("disk template not used, making it again: {e}");
            }
            make(&path, size)?;
            Template::load(&path, size)
        }
    }
}

/// Makes the template file with mkfs: in a temporary file beside it, then
/// renamed into place, so that a concurrent create_disk reads either no
/// template or a whole one.
fn make(path: &Path, size: u64) -> Result<(), TemplateError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| TemplateError::Io { path: p, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    let made = (|| {
        let f = File::create(&tmp).map_err(io(&tmp))?;
        f.set_len(size).map_err(io(&tmp))?;
        let tmp_arg = tmp.to_string_lossy();
        let mut args: Vec<&str> = TEMPLATE_MKFS_ARGS.to_vec();
        args.push(&tmp_arg);
        crate::host::tool("formatting disk template", "mkfs.ext4", &args).map_err(|e| {
            TemplateError::Mkfs {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made
}

/// A template's written bytes, in runs, and where its UUID lives.
pub struct Template {
    runs: Vec<Run>,
    /// Byte offsets of the primary superblock and its backups.
    superblocks: Vec<u64>,
    /// Byte offset of the internal journal's superblock.
    journal: Option<u64>,
}

struct Run {
    offset: u64,
    bytes: Vec<u8>,
}

/// The identities a new filesystem gets.
pub struct Identity {
    pub uuid: [u8; 16],
    pub hash_seed: [u8; 16],
}

impl Identity {
    pub fn random() -> Self {
        Identity {
            uuid: *uuid::Uuid::new_v4().as_bytes(),
            hash_seed: *uuid::Uuid::new_v4().as_bytes(),
        }
    }
}

// ext4 superblock fields (byte offsets within it) and feature bits.
const SB_SIZE: usize = 1024;
const SB_FIRST_DATA_BLOCK: usize = 0x14;
const SB_LOG_BLOCK_SIZE: usize = 0x18;
const SB_BLOCKS_PER_GROUP: usize = 0x20;
const SB_MAGIC: usize = 0x38;
const SB_INODE_SIZE: usize = 0x58;
const SB_FEATURE_COMPAT: usize = 0x5C;
const SB_FEATURE_INCOMPAT: usize = 0x60;
const SB_FEATURE_RO_COMPAT: usize = 0x64;
const SB_UUID: usize = 0x68;
const SB_JOURNAL_INUM: usize = 0xE0;
const SB_HASH_SEED: usize = 0xEC;
const SB_DESC_SIZE: usize = 0xFE;
const SB_BLOCKS_COUNT_HI: usize = 0x150;
const SB_BACKUP_BGS: usize = 0x24C;
const SB_CHECKSUM_TYPE: usize = 0x175;
const SB_CHECKSUM: usize = 0x3FC;
const SB_BLOCKS_COUNT_LO: usize = 0x04;
const EXT4_MAGIC: u16 = 0xEF53;
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const COMPAT_SPARSE_SUPER2: u32 = 0x200;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
const RO_COMPAT_GDT_CSUM: u32 = 0x10;
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const INODE_EXTENTS_FL: u32 = 0x80000;
const EXTENT_MAGIC: u16 = 0xF30A;
const JBD2_MAGIC: u32 = 0xC03B_3998;
const JBD2_UUID: usize = 0x30;
const JBD2_FEATURE_INCOMPAT: usize = 0x28;
const JBD2_INCOMPAT_CSUM_V2_V3: u32 = 0x8 | 0x10;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The superblock checksum as ext4 computes it: crc32c seeded with !0 and
/// not inverted at the end (the crate's crc32c is the inverted form).
fn sb_checksum(sb: &[u8]) -> u32 {
    !crc32c::crc32c(&sb[..SB_CHECKSUM])
}

impl Template {
    /// Reads and checks a template made for disks of `size` bytes.
    pub fn load(path: &Path, size: u64) -> Result<Template, TemplateError> {
        let bad = |why| TemplateError::NotUsable {
            path: path.to_path_buf(),
            why,
        };
        let io = |source| TemplateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() != size {
            return Err(bad("its size is not the disk's"));
        }
        let mut runs = Vec::new();
        for (offset, len) in merged(data_runs(&file, size).map_err(io)?) {
            let mut bytes = vec![0; len as usize];
            file.read_exact_at(&mut bytes, offset).map_err(io)?;
            runs.push(Run { offset, bytes });
        }
        let mut t = Template {
            runs,
            superblocks: vec![],
            journal: None,
        };
        let sb = t.bytes(1024, SB_SIZE).ok_or(bad("no superblock"))?.to_vec();
        if le16(&sb, SB_MAGIC) != EXT4_MAGIC {
            return Err(bad("not ext4"));
        }
        let (compat, incompat, ro) = (
            le32(&sb, SB_FEATURE_COMPAT),
            le32(&sb, SB_FEATURE_INCOMPAT),
            le32(&sb, SB_FEATURE_RO_COMPAT),
        );
        if ro & RO_COMPAT_METADATA_CSUM == 0
            || incompat & INCOMPAT_CSUM_SEED == 0
            || ro & RO_COMPAT_GDT_CSUM != 0
            || sb[SB_CHECKSUM_TYPE] != 1
        {
            // Checksums would be seeded from the UUID: it cannot change here.
            return Err(bad("its checksums are not seeded apart from the UUID"));
        }
        let log = le32(&sb, SB_LOG_BLOCK_SIZE);
        if log > 6 {
            return Err(bad("block size"));
        }
        let bs = 1024u64 << log;
        let first = le32(&sb, SB_FIRST_DATA_BLOCK) as u64;
        let per_group = le32(&sb, SB_BLOCKS_PER_GROUP) as u64;
        let mut blocks = le32(&sb, SB_BLOCKS_COUNT_LO) as u64;
        if incompat & INCOMPAT_64BIT != 0 {
            blocks |= (le32(&sb, SB_BLOCKS_COUNT_HI) as u64) << 32;
        }
        if per_group == 0 || blocks * bs != size {
            return Err(bad("its geometry is not the disk's"));
        }
        let groups = (blocks - first).div_ceil(per_group);
        let backups: Vec<u64> = if compat & COMPAT_SPARSE_SUPER2 != 0 {
            [le32(&sb, SB_BACKUP_BGS), le32(&sb, SB_BACKUP_BGS + 4)]
                .into_iter()
                .filter(|&g| g != 0)
                .map(u64::from)
                .collect()
        } else if ro & RO_COMPAT_SPARSE_SUPER != 0 {
            (1..groups).filter(|&g| sparse_backup(g)).collect()
        } else {
            (1..groups).collect()
        };
        t.superblocks.push(1024);
        for g in backups {
            if g >= groups {
                return Err(bad("a backup superblock past the last group"));
            }
            t.superblocks.push((first + g * per_group) * bs);
        }
        for &at in &t.superblocks {
            let b = t.bytes(at, SB_SIZE).ok_or(bad("a superblock is missing"))?;
            if le16(b, SB_MAGIC) != EXT4_MAGIC || le32(b, SB_CHECKSUM) != sb_checksum(b) {
                return Err(bad("a superblock's checksum is wrong"));
            }
        }
        if compat & COMPAT_HAS_JOURNAL != 0 {
            let at = t
                .journal_superblock(&sb, bs)
                .ok_or(bad("its journal is not an internal one in one extent"))?;
            let j = t.bytes(at, SB_SIZE).ok_or(bad("no journal superblock"))?;
            if be32(j, 0) != JBD2_MAGIC
                || be32(j, JBD2_FEATURE_INCOMPAT) & JBD2_INCOMPAT_CSUM_V2_V3 != 0
            {
                return Err(bad("its journal superblock is not a plain one"));
            }
            t.journal = Some(at);
        }
        Ok(t)
    }

    /// The journal inode's first block, when the journal is inode 8 with a
    /// depth-0 extent tree starting at its block 0 (what mkfs makes).
    fn journal_superblock(&self, sb: &[u8], bs: u64) -> Option<u64> {
        if le32(sb, SB_JOURNAL_INUM) != 8 {
            return None;
        }
        let first = le32(sb, SB_FIRST_DATA_BLOCK) as u64;
        let incompat = le32(sb, SB_FEATURE_INCOMPAT);
        let desc_size = le16(sb, SB_DESC_SIZE) as usize;
        let desc = self.bytes((first + 1) * bs, 64)?;
        let mut table = le32(desc, 0x08) as u64;
        if incompat & INCOMPAT_64BIT != 0 && desc_size >= 64 {
            table |= (le32(desc, 0x28) as u64) << 32;
        }
        let inode_size = le16(sb, SB_INODE_SIZE) as u64;
        let inode = self.bytes(table * bs + 7 * inode_size, 0x28 + 24)?;
        let eh = &inode[0x28..];
        if le32(inode, 0x20) & INODE_EXTENTS_FL == 0
            || le16(eh, 0) != EXTENT_MAGIC
            || le16(eh, 2) == 0
            || le16(eh, 6) != 0
            || le32(eh, 12) != 0
        {
            return None;
        }
        let start = ((le16(eh, 12 + 6) as u64) << 32) | le32(eh, 12 + 8) as u64;
        Some(start * bs)
    }

    /// `len` bytes at `offset` if one run holds them all.
    fn bytes(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let run = self.runs.iter().find(|r| {
            r.offset <= offset && offset + len as u64 <= r.offset + r.bytes.len() as u64
        })?;
        let at = (offset - run.offset) as usize;
        Some(&run.bytes[at..at + len])
    }

    /// Writes the template into `disk` (a file already sized, all zeros)
    /// under a new identity, then makes it durable, as mkfs does.
    pub fn write_to(&self, disk: &File, id: &Identity) -> std::io::Result<()> {
        for run in &self.runs {
            let end = run.offset + run.bytes.len() as u64;
            let inside = |at: u64| at >= run.offset && at + SB_SIZE as u64 <= end;
            let mut bytes = run.bytes.clone();
            for &at in self.superblocks.iter().filter(|&&at| inside(at)) {
                let sb = &mut bytes[(at - run.offset) as usize..][..SB_SIZE];
                sb[SB_UUID..SB_UUID + 16].copy_from_slice(&id.uuid);
                sb[SB_HASH_SEED..SB_HASH_SEED + 16].copy_from_slice(&id.hash_seed);
                let sum = sb_checksum(sb);
                sb[SB_CHECKSUM..SB_CHECKSUM + 4].copy_from_slice(&sum.to_le_bytes());
            }
            if let Some(at) = self.journal.filter(|&at| inside(at)) {
                let j = &mut bytes[(at - run.offset) as usize..][..SB_SIZE];
                j[JBD2_UUID..JBD2_UUID + 16].copy_from_slice(&id.uuid);
            }
            disk.write_all_at(&bytes, run.offset)?;
        }
        disk.sync_all()
    }
}

/// Groups 1 and the powers of 3, 5 and 7 hold backups under sparse_super.
fn sparse_backup(g: u64) -> bool {
    let power_of = |b: u64| {
        let mut n = b;
        while n < g {
            n *= b;
        }
        n == g
    };
    g == 1 || power_of(3) || power_of(5) || power_of(7)
}

/// The file's written (data) ranges, by SEEK_DATA and SEEK_HOLE.
fn data_runs(file: &File, size: u64) -> std::io::Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let seek = |at: u64, whence| {
        // SAFETY: lseek on an open descriptor with a valid whence.
        let r = unsafe { libc::lseek(fd, at as libc::off_t, whence) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r as u64)
        }
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < size {
        let start = match seek(at, libc::SEEK_DATA) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            Err(e) => return Err(e),
        };
        let end = seek(start, libc::SEEK_HOLE)?.min(size);
        out.push((start, end - start));
        at = end;
    }
    Ok(out)
}

/// Runs closer than MERGE_GAP joined, holes included.
fn merged(runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, len) in runs {
        match out.last_mut() {
            Some((s, l)) if start <= *s + *l + MERGE_GAP => *l = start + len - *s,
            _ => out.push((start, len)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_super_backup_groups() {
        let g: Vec<u64> = (1..60).filter(|&g| sparse_backup(g)).collect();
        assert_eq!(g, vec![1, 3, 5, 7, 9, 25, 27, 49]);
    }

    #[test]
    fn near_runs_merge_far_ones_do_not() {
        let runs = vec![(0, 4096), (8192, 4096), (1 << 30, 4096)];
        assert_eq!(merged(runs), vec![(0, 12288), (1 << 30, 4096)]);
    }
}

/// Against the host's mkfs.ext4 and e2fsck, which the warden CPI needs.
#[cfg(test)]
mod mkfs_tests {
    use super::*;
    use std::process::Command;

    fn fsck_clean(path: &Path) {
        let out = Command::new("e2fsck")
            .args(["-fn"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "e2fsck {}: {}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn uuid_of(path: &Path) -> String {
        let out = Command::new("dumpe2fs")
            .arg("-h")
            .arg(path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Filesystem UUID:"))
            .unwrap_or_else(|| panic!("no UUID in dumpe2fs of {}: {text}", path.display()))
            .trim()
            .to_owned()
    }

    fn new_disk(dir: &Path, name: &str, size: u64) -> PathBuf {
        let t = template_for(dir, size).unwrap();
        let path = dir.join(name);
        let f = File::create(&path).unwrap();
        f.set_len(size).unwrap();
        t.write_to(&f, &Identity::random()).unwrap();
        path
    }

    /// Written bytes of a sparse file, read through its data runs.
    fn written(path: &Path) -> Vec<u8> {
        let f = File::open(path).unwrap();
        let size = f.metadata().unwrap().len();
        let mut out = Vec::new();
        for (at, len) in data_runs(&f, size).unwrap() {
            let mut b = vec![0; len as usize];
            f.read_exact_at(&mut b, at).unwrap();
            out.extend(b);
        }
        out
    }

    #[test]
    fn disks_from_a_template_are_clean_ext4_each_with_its_own_uuid() {
        let dir = tempfile::tempdir().unwrap();
        // 64 MiB gets 1 KiB blocks from mke2fs.conf's "small" type, 1 GiB 4 KiB.
        for size in [64u64 << 20, 1 << 30] {
            let a = new_disk(dir.path(), &format!("a-{size}"), size);
            let b = new_disk(dir.path(), &format!("b-{size}"), size);
            let tpl = template_path(dir.path(), size);
            for p in [&a, &b, &tpl] {
                fsck_clean(p);
            }
            let (ua, ub, ut) = (uuid_of(&a), uuid_of(&b), uuid_of(&tpl));
            assert!(ua != ub && ua != ut && ub != ut, "{ua} {ub} {ut}");
            // The template's UUID is left nowhere: not in a backup
            // superblock, not in the journal's.
            let raw = *uuid::Uuid::parse_str(&ut).unwrap().as_bytes();
            let bytes = written(&a);
            assert!(
                !bytes.windows(16).any(|w| w == raw),
                "the template's UUID is still in {}",
                a.display()
            );
        }
    }

    #[test]
    fn a_disk_file_is_a_few_runs_not_one_per_metadata_block() {
        let dir = tempfile::tempdir().unwrap();
        let a = new_disk(dir.path(), "a", 1 << 30);
        let f = File::open(&a).unwrap();
        let runs = data_runs(&f, 1 << 30).unwrap();
        assert!(runs.len() <= 6, "{} runs: {runs:?}", runs.len());
    }

    #[test]
    fn a_damaged_template_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let size = 64 << 20;
        template_for(dir.path(), size).unwrap();
        let tpl = template_path(dir.path(), size);
        let f = std::fs::OpenOptions::new().write(true).open(&tpl).unwrap();
        f.write_all_at(b"XXXX", 1024 + 0x100).unwrap();
        drop(f);
        assert!(matches!(
            Template::load(&tpl, size),
            Err(TemplateError::NotUsable { .. })
        ));
        let a = new_disk(dir.path(), "a", size);
        fsck_clean(&a);
        fsck_clean(&tpl);
    }

    #[test]
    fn a_template_of_another_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        template_for(dir.path(), 64 << 20).unwrap();
        let other = template_path(dir.path(), 128 << 20);
        std::fs::copy(template_path(dir.path(), 64 << 20), &other).unwrap();
        File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_len(128 << 20)
            .unwrap();
        assert!(matches!(
            Template::load(&other, 128 << 20),
            Err(TemplateError::NotUsable { .. })
        ));
    }
}
