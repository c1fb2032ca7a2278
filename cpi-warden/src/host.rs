//! What the CPI does on the Garden host itself: the per-VM bind-mount
//! directories (the persistent one a shared mount, so disks mounted into it
//! later appear inside the container), loop-mounting disk files, and
//! reading /proc/self/mountinfo.

use cpi::{Classify, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{what}: {cmd} failed: {message}")]
    Tool {
        what: String,
        cmd: String,
        message: String,
    },
    #[error("{what}: {path}: {source}")]
    Fs {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Classify for HostError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Cloud
    }
}

pub fn fs_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> HostError {
    let (what, path) = (what.to_owned(), path.to_path_buf());
    move |source| HostError::Fs { what, path, source }
}

/// Runs a host tool; the error carries its stderr.
pub fn tool(what: &str, cmd: &str, args: &[&str]) -> Result<String, HostError> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| HostError::Tool {
            what: what.into(),
            cmd: cmd.into(),
            message: format!("cannot run it: {e} (is it installed and on PATH?)"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HostError::Tool {
            what: what.into(),
            cmd: format!("{cmd} {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// A cid as the name of one entry in a CPI directory. Hidden names are the
/// CPI's own (disk metadata files, `.templates`, `.deleted`), never a cid.
pub fn entry_name<'a>(kind: &str, cid: &'a str) -> cpi::Result<&'a str> {
    if cid.is_empty() || cid.contains('/') || cid.starts_with('.') {
        return Err(cpi::Error::cpi(format!(
            "{kind} cid '{cid}' is not a valid name"
        )));
    }
    Ok(cid)
}

/// A host step whose thread panicked (never expected; kept typed).
pub fn tool_panicked(what: &str) -> HostError {
    HostError::Tool {
        what: what.into(),
        cmd: "thread".into(),
        message: "panicked".into(),
    }
}

/// Makes an ext4 filesystem in a freshly sized (sparse, so all-zero) disk
/// file. `assume_storage_prezeroed` (e2fsprogs 1.47) lets mkfs skip zeroing
/// the journal (32 MiB written per GiB of disk otherwise) and mark the inode
/// tables zeroed, so the kernel's lazy-init thread does not write them after
/// the first mount either: less to write at create_disk, to race with at
/// attach and detach, and to free at delete_disk. Older mkfs refuses the
/// option by name; then `lazy_journal_init` (also safe on a zeroed file).
pub fn format_sparse_disk(path: &Path) -> Result<(), HostError> {
    let p = path.to_string_lossy();
    let fast = tool(
        "formatting disk",
        "mkfs.ext4",
        &["-F", "-q", "-E", "nodiscard,assume_storage_prezeroed=1", &p],
    );
    match fast {
        Err(HostError::Tool { message, .. }) if message.contains("assume_storage_prezeroed") => {
            tool(
                "formatting disk",
                "mkfs.ext4",
                &["-F", "-q", "-E", "nodiscard,lazy_journal_init=1", &p],
            )
            .map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

pub fn is_mount_point(path: &Path) -> bool {
    mounts_under(path).iter().any(|m| m == path)
}

fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cpath(what: &str, p: &Path) -> Result<std::ffi::CString, HostError> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| HostError::Fs {
        what: what.into(),
        path: p.into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })
}

/// mount(2) without a filesystem type: binds and propagation changes, done
/// by system call (the `mount` tool costs a process each time).
fn sys_mount(what: &str, src: &Path, target: &Path, flags: libc::c_ulong) -> Result<(), HostError> {
    let (s, t) = (cpath(what, src)?, cpath(what, target)?);
    // SAFETY: both strings are NUL-terminated and live across the call;
    // fstype and data may be null for bind and propagation mounts.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(fs_err(what, target)(std::io::Error::last_os_error()))
    }
}

/// umount2(2); `lazy` detaches a busy mount.
fn sys_umount(what: &str, target: &Path, lazy: bool) -> Result<(), HostError> {
    let t = cpath(what, target)?;
    // SAFETY: a NUL-terminated path that lives across the call.
    let rc = unsafe { libc::umount2(t.as_ptr(), if lazy { libc::MNT_DETACH } else { 0 }) };
    if rc == 0 {
        Ok(())
    } else {
        Err(fs_err(what, target)(std::io::Error::last_os_error()))
    }
}

/// Makes `dir` a mount point of its own with shared propagation, so that a
/// container bind-mounting it sees disks mounted under it afterwards.
pub fn make_shared_dir(dir: &Path) -> Result<(), HostError> {
    let what = "sharing bind mount dir";
    std::fs::create_dir_all(dir).map_err(fs_err("making bind mount dir", dir))?;
    if !is_mount_point(dir) {
        sys_mount(what, dir, dir, libc::MS_BIND)?;
    }
    // Private first: a new peer group of its own, not the parent's.
    sys_mount(what, Path::new("none"), dir, libc::MS_PRIVATE)?;
    sys_mount(what, Path::new("none"), dir, libc::MS_SHARED)
}

/// Unmounts everything at or under `dir` (deepest first), then removes it.
/// Gone already is fine.
pub fn remove_dir(dir: &Path) -> Result<(), HostError> {
    for m in mounts_under(dir) {
        if sys_umount("unmounting", &m, false).is_err() {
            sys_umount("unmounting", &m, true)?;
        }
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(fs_err("removing", dir)(e)),
        _ => Ok(()),
    }
}

/// Loop-mounts an ext4 disk file at `target`: by system call, or with the
/// `mount` tool when that fails (no loop-control, a device without a node,
/// a filesystem that is not ext4), which also reports the reason.
pub fn mount_disk(file: &Path, target: &Path) -> Result<(), HostError> {
    std::fs::create_dir_all(target).map_err(fs_err("making disk mount point", target))?;
    let r = match crate::loop_device::mount(file, target) {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::debug!(
                "mounting {} by system call: {e}; trying mount -o loop",
                file.display()
            );
            tool(
                "mounting disk",
                "mount",
                &[
                    "-o",
                    "loop",
                    &file.to_string_lossy(),
                    &target.to_string_lossy(),
                ],
            )
            .map(|_| ())
        }
    };
    if r.is_err() {
        let _ = std::fs::remove_dir(target);
    }
    r
}

/// Unmounts a disk (its loop device is freed with the last mount) and
/// removes the mount point.
pub fn unmount_disk(target: &Path) -> Result<(), HostError> {
    sys_umount("unmounting disk", target, false)?;
    let _ = std::fs::remove_dir(target);
    Ok(())
}

/// An exclusive lock on a disk file, held while one CPI process works on the
/// disk (attach, detach, delete, resize, metadata), so that two processes
/// never mount one disk twice or delete it under an attach. flock(2) on the
/// file itself: released when the process ends, however it ends.
pub struct DiskLock {
    _file: std::fs::File,
}

/// Takes the disk's lock, waiting (bounded) while another process holds it;
/// `None` when the file does not exist (any more).
pub async fn lock_disk(path: &Path) -> Result<Option<DiskLock>, cpi::Error> {
    use std::os::unix::io::AsRawFd;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fs_err("opening disk to lock it", path)(e).into()),
    };
    let fd = file.as_raw_fd();
    let backoff = cpi::wait::Backoff::new(
        std::time::Duration::from_millis(5),
        std::time::Duration::from_millis(200),
        std::time::Duration::from_secs(120),
    );
    cpi::wait::wait_for(
        format!("the lock on disk {}", path.display()),
        backoff,
        || async {
            // SAFETY: fd is an open descriptor owned by `file`, alive here.
            let rc = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Some(()));
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(fs_err("locking disk", path)(e).into())
            }
        },
    )
    .await?;
    // Deleted while we waited: the lock is on a file that no longer has a name.
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(DiskLock { _file: file }))
}
