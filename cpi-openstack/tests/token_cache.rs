//! The Keystone token shared by successive CPI processes: the second process
//! asks Keystone for nothing; a revoked token (401) gets a fresh one; a
//! corrupt file or one for other settings is not used; the file is 0600 and
//! never logged; `token_cache: false` turns it off.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

const TOKENS: &str = "POST /identity/v3/auth/tokens";

fn cached_world() -> (World, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap().keep().join("cache");
    let d = dir.display().to_string();
    let w = world_with(move |p| p["openstack"]["token_cache_dir"] = json!(d));
    (w, dir)
}

fn cache_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[test]
fn a_second_process_asks_keystone_for_no_token() {
    let (w, dir) = cached_world();
    assert_eq!(w.ok("has_disk", vec![json!("vol-x")]), json!(false));
    assert_eq!(w.count_calls(TOKENS), 1);
    assert_eq!(w.ok("has_vm", vec![json!("vm-x")]), json!(false));
    assert_eq!(w.ok("has_disk", vec![json!("vol-y")]), json!(false));
    assert_eq!(w.count_calls(TOKENS), 1, "{:?}", w.fake.calls());

    let files = cache_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "file mode {mode:o}");
    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o077, 0, "directory mode {dir_mode:o}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        !name.contains("admin") && !name.contains(PASSWORD),
        "{name}"
    );

    let all: String = w
        .cpi
        .transcript()
        .iter()
        .map(|r| format!("{}\n{}", r.stderr, r.stdout))
        .collect();
    let token = std::fs::read_to_string(&files[0]).unwrap();
    let token: serde_json::Value = serde_json::from_str(&token).unwrap();
    let token = token["token"].as_str().unwrap();
    assert!(token.starts_with("gAAAAA"));
    assert!(!all.contains(token), "the cached token reached the output");
}

#[test]
fn a_revoked_token_gets_a_fresh_one_and_the_cache_is_rewritten() {
    let (w, _dir) = cached_world();
    w.ok("has_disk", vec![json!("vol-x")]);
    w.fake.revoke_tokens();
    assert_eq!(w.ok("has_disk", vec![json!("vol-x")]), json!(false));
    assert_eq!(w.count_calls(TOKENS), 2);
    w.ok("has_disk", vec![json!("vol-x")]);
    assert_eq!(w.count_calls(TOKENS), 2, "the fresh token was cached");
}

#[test]
fn a_corrupt_or_foreign_cache_file_is_not_used() {
    let (w, dir) = cached_world();
    w.ok("has_disk", vec![json!("vol-x")]);
    let file = cache_files(&dir).remove(0);
    std::fs::write(&file, b"{\"key\": \"abc\", \"tok").unwrap();
    assert_eq!(w.ok("has_disk", vec![json!("vol-x")]), json!(false));
    assert_eq!(w.count_calls(TOKENS), 2);
    std::fs::write(&file, b"\xff\xfe not json at all").unwrap();
    w.ok("has_disk", vec![json!("vol-x")]);
    assert_eq!(w.count_calls(TOKENS), 3);
    // Unreadable (a directory where the file should be): still a fresh token.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    assert_eq!(w.ok("has_disk", vec![json!("vol-x")]), json!(false));
    assert_eq!(w.count_calls(TOKENS), 4);
}

#[test]
fn a_token_close_to_expiry_is_not_reused() {
    let (w, _dir) = cached_world();
    // Under the ten-minute margin: every process asks again.
    w.fake
        .set_token_lifetime(std::time::Duration::from_secs(9 * 60));
    w.ok("has_disk", vec![json!("vol-x")]);
    w.ok("has_disk", vec![json!("vol-x")]);
    assert_eq!(w.count_calls(TOKENS), 2);
}

#[test]
fn other_credentials_do_not_share_a_token_and_the_cache_can_be_turned_off() {
    let (w, dir) = cached_world();
    w.ok("has_disk", vec![json!("vol-x")]);
    let d = dir.display().to_string();
    let app = world_with(move |p| {
        let o = &mut p["openstack"];
        o["token_cache_dir"] = json!(d);
        o["application_credential_id"] = json!("app-cred-1");
        o["application_credential_secret"] = json!(format!("{PASSWORD}-app"));
    });
    app.ok("has_disk", vec![json!("vol-x")]);
    assert_eq!(cache_files(&dir).len(), 2);

    let off_dir = tempfile::tempdir().unwrap();
    let d = off_dir.path().join("c").display().to_string();
    let off = world_with(move |p| {
        p["openstack"]["token_cache_dir"] = json!(d);
        p["openstack"]["token_cache"] = json!(false);
    });
    off.ok("has_disk", vec![json!("vol-x")]);
    off.ok("has_disk", vec![json!("vol-x")]);
    assert_eq!(off.count_calls(TOKENS), 2);
    assert!(!off_dir.path().join("c").exists());
}
