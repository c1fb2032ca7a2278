//! The conformance environment cleans up after itself: dropping it with a
//! VM running and a disk attached leaves no mount, loop device or directory.

mod common;

use common::World;
use harness::Environment;
use serde_json::json;

fn loop_devices_for(root: &str) -> Vec<String> {
    let out = std::process::Command::new("losetup")
        .arg("-a")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(root))
        .map(str::to_owned)
        .collect()
}

fn mounts_for(root: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter(|l| l.contains(root))
        .map(str::to_owned)
        .collect()
}

#[test]
fn dropping_the_environment_leaves_no_mounts_or_loop_devices() {
    let w = World::new();
    let root = w.env.root().to_string_lossy().into_owned();
    let stemcell = w.stemcell();
    let vm = w.vm(&stemcell, 5);
    let disk = w
        .ok("create_disk", vec![json!(16), json!({}), json!(vm)])
        .as_str()
        .unwrap()
        .to_owned();
    w.ok("attach_disk", vec![json!(vm), json!(disk)]);
    assert!(
        !loop_devices_for(&root).is_empty(),
        "the attached disk has no loop device"
    );
    assert!(
        mounts_for(&root).len() >= 3,
        "expected the VM's bind mounts and the disk: {:?}",
        mounts_for(&root)
    );
    assert!(
        w.env
            .inventory()
            .other
            .iter()
            .any(|o| o.starts_with("loop:")),
        "the inventory shows no loop device"
    );
    drop(w);
    assert_eq!(mounts_for(&root), Vec::<String>::new());
    assert_eq!(loop_devices_for(&root), Vec::<String>::new());
    assert!(
        !std::path::Path::new(&root).exists(),
        "{root} was not removed"
    );
}
