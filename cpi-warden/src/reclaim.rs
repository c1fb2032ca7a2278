//! Freeing a deleted stemcell off the call's path: the stemcell is renamed
//! into a hidden `.deleted` directory beside the others (one system call:
//! from then on it is gone for every CPI call), and a detached `rm -rf`
//! frees its files after the CPI has answered.
//!
//! Why: on a host whose ext4 is mounted with `discard`, freeing each
//! directory's block or file's extent waits for a discard round trip to the
//! device, about 0.1 ms here: a real stemcell's ~20,000 entries take seconds,
//! which the director would wait for with nothing to gain.
//!
//! The `rm` is given everything in `.deleted`, so one whose process died
//! (host reboot, OOM) is finished by the next delete. When the rename or
//! the spawn fails, the stemcell is removed in place, as before.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where deleted entries wait to be freed, inside the directory they left.
pub const DELETED_DIR: &str = ".deleted";

/// What happened to the entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// There was nothing at the path.
    Gone,
    /// Moved aside; a background `rm` is freeing it.
    Freeing,
    /// Removed in place (setting it aside or starting `rm` failed).
    Removed,
}

/// Deletes `path` (a file or a directory tree inside `parent`).
pub fn delete(parent: &Path, path: &Path) -> io::Result<Outcome> {
    let aside_dir = parent.join(DELETED_DIR);
    let Some(name) = path.file_name() else {
        return remove_in_place(path);
    };
    // A per-call name: a stemcell cid deleted, re-created by a caller that
    // chose the same name and deleted again, must not meet its old self.
    let aside = aside_dir.join(format!(
        "{}.{}",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let moved = std::fs::rename(path, &aside).or_else(|e| match e.kind() {
        io::ErrorKind::NotFound if !aside_dir.is_dir() => {
            std::fs::create_dir_all(&aside_dir)?;
            std::fs::rename(path, &aside)
        }
        _ => Err(e),
    });
    match moved {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound && !exists(path) => return Ok(Outcome::Gone),
        Err(e) => {
            tracing::warn!(
                "could not set {} aside, removing it now: {e}",
                path.display()
            );
            return remove_in_place(path);
        }
    }
    match free_in_background(&aside_dir) {
        Ok(()) => Ok(Outcome::Freeing),
        Err(e) => {
            tracing::warn!(
                "could not start rm for {}, removing it now: {e}",
                aside.display()
            );
            remove_in_place(&aside)
        }
    }
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Removes a file or a directory tree now; nothing there is `Gone`.
pub fn remove_in_place(path: &Path) -> io::Result<Outcome> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => Ok(Outcome::Removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Outcome::Gone),
        Err(e) => Err(e),
    }
}

/// Starts `rm -rf` on every entry in `aside_dir`, detached: no stdio of
/// ours (the director reads our stdout to its end), a process group of
/// its own, never waited for (it is re-parented when we exit).
fn free_in_background(aside_dir: &Path) -> io::Result<()> {
    let entries: Vec<PathBuf> = std::fs::read_dir(aside_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    Command::new("rm")
        .args(["-rf", "--one-file-system", "--"])
        .args(&entries)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn drained(dir: &Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::fs::read_dir(dir)
                .map(|d| d.count() == 0)
                .unwrap_or(true)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_tree_is_gone_at_once_and_freed_soon_after() {
        let root = tempfile::tempdir().unwrap();
        let tree = root.path().join("sc");
        std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
        std::fs::write(tree.join("a/b/c/f"), b"x").unwrap();
        assert_eq!(delete(root.path(), &tree).unwrap(), Outcome::Freeing);
        assert!(!tree.exists());
        assert!(
            drained(&root.path().join(DELETED_DIR)),
            "rm did not free it"
        );
    }

    #[test]
    fn a_leftover_of_an_earlier_delete_is_freed_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let aside = root.path().join(DELETED_DIR);
        std::fs::create_dir_all(aside.join("old.1234/x")).unwrap();
        let file = root.path().join("flat");
        std::fs::write(&file, b"tarball").unwrap();
        assert_eq!(delete(root.path(), &file).unwrap(), Outcome::Freeing);
        assert!(
            drained(&aside),
            "{:?}",
            std::fs::read_dir(&aside).unwrap().count()
        );
    }

    #[test]
    fn nothing_there_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path().join("none");
        assert_eq!(delete(root.path(), &p).unwrap(), Outcome::Gone);
    }
}
