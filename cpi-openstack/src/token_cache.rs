//! The Keystone token shared by successive CPI processes of one job: a file
//! per set of auth settings (named by their SHA-256, so neither the user nor
//! the password shows in the name), mode 0600 in a directory of mode 0700,
//! written whole and renamed into place so that concurrent processes never
//! read half a file. Anything unreadable, corrupt, for other settings or
//! close to its `expires_at` is ignored: a fresh token is asked for. The
//! token is never logged (it is registered as a secret when read).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cached token is used only while it has this long left to live: a call
/// (a create_vm waiting for its server) must not outlive its token. A 401
/// still gets a fresh one.
pub const MARGIN: Duration = Duration::from_secs(600);

/// Where the job keeps it when `openstack.token_cache_dir` is not set (only
/// on a BOSH VM, where `/var/vcap/data` exists).
pub const JOB_DATA: &str = "/var/vcap/data";
pub const DEFAULT_DIR: &str = "/var/vcap/data/openstack_cpi";

#[derive(Serialize, Deserialize)]
pub struct Cached {
    /// The hash the file is named by, checked again on reading.
    pub key: String,
    pub token: String,
    /// Keystone's `expires_at` (RFC 3339).
    pub expires_at: String,
    pub catalog: Value,
}

pub struct TokenCache {
    pub file: PathBuf,
    pub key: String,
}

impl TokenCache {
    /// The cache for these auth settings (`identity`: the Keystone URL and
    /// the token request body), in `dir`.
    pub fn new(dir: &Path, identity: &str) -> TokenCache {
        let key = hex::encode(Sha256::digest(identity.as_bytes()));
        TokenCache {
            file: dir.join(format!("token-{}.json", &key[..32])),
            key,
        }
    }

    /// The cached token, when it is readable, for these settings and has
    /// more than [`MARGIN`] left.
    pub fn load(&self) -> Option<Cached> {
        let bytes = std::fs::read(&self.file).ok()?;
        if bytes.len() > crate::session::MAX_BODY {
            return None;
        }
        let c: Cached = serde_json::from_slice(&bytes).ok()?;
        let expires = parse_rfc3339(&c.expires_at)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
        (c.key == self.key && !c.token.is_empty() && expires - now > MARGIN.as_secs() as i64)
            .then_some(c)
    }

    /// Writes the token for the next process; best effort (the call goes on
    /// without a cache if the directory cannot be written).
    pub fn store(&self, token: &str, expires_at: &str, catalog: &Value) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let dir = self.file.parent().unwrap_or(Path::new("."));
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let body = serde_json::to_vec(&Cached {
            key: self.key.clone(),
            token: token.to_owned(),
            expires_at: expires_at.to_owned(),
            catalog: catalog.clone(),
        })?;
        let tmp = self
            .file
            .with_extension(format!("tmp.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode given to open is masked by the umask; say it again.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&body)?;
        drop(f);
        std::fs::rename(&tmp, &self.file).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// After a 401: the cached token is no good.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Seconds since the epoch of `2026-12-07T08:00:00Z`,
/// `2026-12-07T08:00:00.000000Z` or `…+01:00`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" || !matches!(s.get(10..11)?, "T" | "t" | " ") {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = rest.get(1..)?.split_once(':')?;
            if oh.len() != 2 || om.len() != 2 {
                return None;
            }
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_keystone_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(
            parse_rfc3339("2026-12-07T08:00:00.000000Z"),
            parse_rfc3339("2026-12-07T09:00:00+01:00")
        );
        for bad in [
            "",
            "2026-12-07",
            "2026-13-07T08:00:00Z",
            "2026-12-07T08:00:00.Z",
            "x026-12-07T08:00:00Z",
            "2026-12-07T08:00:00+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_file_for_other_settings_or_near_expiry_or_corrupt_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenCache::new(dir.path(), "settings a");
        let b = TokenCache::new(dir.path(), "settings b");
        assert_ne!(a.file, b.file);
        a.store("tok-a", "2099-01-01T00:00:00Z", &json!([]))
            .unwrap();
        assert_eq!(a.load().unwrap().token, "tok-a");
        assert!(b.load().is_none());
        // b's name, a's content: the key inside decides.
        std::fs::copy(&a.file, &b.file).unwrap();
        assert!(b.load().is_none());
        a.store("tok-a", "2000-01-01T00:00:00Z", &json!([]))
            .unwrap();
        assert!(a.load().is_none(), "expired");
        std::fs::write(&a.file, b"{\"key\": tru").unwrap();
        assert!(a.load().is_none(), "corrupt");
    }
}
