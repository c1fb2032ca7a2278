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
    let (s, d) = (src.to_string_lossy(), dst.to_string_lossy());
    tool("mount", &["--bind", &s, &d])?;
    tool("mount", &["--make-rslave", &d])?;
    if read_only {
        tool("mount", &["-o", "remount,bind,ro", &d])?;
    }
    Ok(())
}

/// Unmounts everything at or under `dir`, deepest first; lazily when busy.
pub fn unmount_all(dir: &Path) {
    for m in mounts_under(dir) {
        let m = m.to_string_lossy().into_owned();
        if tool("umount", &[&m]).is_err() {
            let _ = tool("umount", &["-l", &m]);
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
