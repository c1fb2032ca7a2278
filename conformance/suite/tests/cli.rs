//! The command line as a user meets it: listing checks, bad arguments, and
//! clouds that cannot run reported as not run (and counted unless allowed).

use std::process::{Command, Output};

fn conformance(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(args)
        .output()
        .expect("conformance runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn lists_every_check_by_group() {
    let out = conformance(&["run", "--list"]);
    assert!(out.status.success());
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), harness::checks::all().len());
    for group in [
        "protocol/",
        "stemcells/",
        "vms/",
        "disks/",
        "flows/",
        "faults/",
        "hygiene/",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(group)),
            "no {group} check in {text}"
        );
    }
    assert_eq!(lines.last(), Some(&"hygiene/inventory_restored"));
}

#[test]
fn refuses_unknown_checks_clouds_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("cpi-x");
    std::fs::write(&fake, "").unwrap();
    let fake = fake.to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "run",
                "--cloud",
                "reference",
                "--cpi",
                fake,
                "--only",
                "vms/no_such_check",
            ],
            "no check or group named 'vms/no_such_check'",
        ),
        (
            vec!["run", "--cloud", "nimbus", "--cpi", fake],
            "unknown cloud 'nimbus'",
        ),
        (vec!["run", "--cloud", "reference"], "run needs --cpi PATH"),
        (vec!["bench", "--cpi", fake], "bench needs --cloud"),
        (
            vec!["run", "--frobnicate"],
            "unknown argument '--frobnicate'",
        ),
    ] {
        let out = conformance(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: stderr {err}");
    }
}

#[test]
fn a_cloud_that_cannot_start_is_reported_and_counted_unless_allowed() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let out = conformance(&["demo", "--bin-dir", dir, "--clouds", "warden"]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(text.contains("cpi-warden not run: CPI binary"), "{text}");
    assert!(text.contains("counted as a failure"), "{text}");
    assert_eq!(text.lines().last(), Some("0 passed, 1 failed"), "{text}");

    let out = conformance(&[
        "demo",
        "--bin-dir",
        dir,
        "--clouds",
        "warden",
        "--allow-missing",
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(stdout(&out).lines().last(), Some("0 passed, 0 failed"));
}
