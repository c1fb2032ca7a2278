//! Real mounts on the host, and reading /proc/self/mountinfo: the fake's
//! containers get real bind mounts, and its inventory and clean-up look at
//! what is really mounted.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Mount points at or under `dir`, deepest first (the order to unmount).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Runs a mount tool; the error carries its stderr.
pub fn tool(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Bind-mounts `src` at `dst`, as a slave: mounts made later under a shared
/// `src` (a persistent disk the CPI loop-mounts) appear at `dst`, and what
/// happens under `dst` never travels back to the host.
pub fn bind(src: &Path, dst: &Path, read_only: bool) -> Result<(), String> {
    sys_mount(src, dst, libc::MS_BIND)?;
    sys_mount(Path::new("none"), dst, libc::MS_SLAVE | libc::MS_REC)?;
    if read_only {
        sys_mount(
            Path::new("none"),
            dst,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
        )?;
    }
    Ok(())
}

fn cstr(p: &Path) -> Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| format!("{}: {e}", p.display()))
}

/// mount(2) for binds and propagation (a `mount` process each time is slow).
fn sys_mount(src: &Path, target: &Path, flags: libc::c_ulong) -> Result<(), String> {
    let (s, t) = (cstr(src)?, cstr(target)?);
    // SAFETY: NUL-terminated strings living across the call; null fstype
    // and data are valid for bind and propagation changes.
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
        Err(format!(
            "mount {} on {}: {}",
            src.display(),
            target.display(),
            std::io::Error::last_os_error()
        ))
    }
}

fn sys_umount(target: &Path, flags: libc::c_int) -> Result<(), String> {
    let t = cstr(target)?;
    // SAFETY: a NUL-terminated path living across the call.
    let rc = unsafe { libc::umount2(t.as_ptr(), flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "umount {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        ))
    }
}

/// Unmounts everything at or under `dir`, deepest first; lazily when busy.
pub fn unmount_all(dir: &Path) {
    for m in mounts_under(dir) {
        if sys_umount(&m, 0).is_err() {
            let _ = sys_umount(&m, libc::MNT_DETACH);
        }
    }
}

/// Loop devices whose backing file is under `dir` (`/dev/loop3:/tmp/…/disk`).
pub fn loops_under(dir: &Path) -> Vec<(String, PathBuf)> {
    let out = Command::new("losetup")
        .args(["-a", "-n", "-O", "NAME,BACK-FILE"])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let dev = it.next()?.to_owned();
            let file = PathBuf::from(
                it.collect::<Vec<_>>()
                    .join(" ")
                    .trim_end_matches(" (deleted)"),
            );
            file.starts_with(dir).then_some((dev, file))
        })
        .collect()
}
