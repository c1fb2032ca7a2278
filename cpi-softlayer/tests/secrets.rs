//! The API key, the registry password and the iSCSI CHAP password never
//! reach stderr or the response's `log`, even at debug level and on errors.

mod common;

use common::setup;
use harness::cpi::Reply;
use harness::Environment;
use serde_json::json;

#[test]
fn secrets_stay_out_of_logs() {
    let s = setup();
    let v1 = s.cpi.with_versions(1, 1);
    let mut replies: Vec<Reply> = Vec::new();
    let stemcell = s.stemcell();
    let r = s.call_with(
        &v1,
        "create_vm",
        s.create_vm_args(&stemcell, s.env.dynamic_network()),
    );
    let vm = r.result.as_str().unwrap().to_owned();
    replies.push(r);
    let disk = s.disk(&vm);
    replies.push(s.call_with(&v1, "attach_disk", json!([vm, disk])));
    let chap = s.env.fake.with_state(|st| {
        st.guests
            .values()
            .filter_map(|g| g.allowed_host.clone())
            .map(|h| h.password)
            .collect::<Vec<_>>()
    });
    assert_eq!(chap.len(), 1, "a CHAP password was handed out");
    assert!(
        s.env.secrets().contains(&chap[0]),
        "the environment reports CHAP passwords as secrets"
    );
    replies.push(s.call("attach_disk", json!([vm, disk])));
    replies.push(s.call_with(&v1, "detach_disk", json!([vm, disk])));
    replies.push(s.call_with(&v1, "delete_vm", json!([vm])));
    // An error path: a refused call still logs nothing secret.
    s.env
        .fake
        .fail_next(None, 1, fake_softlayer::Action::public("refused"));
    replies.push(s.call("has_vm", json!([vm])));

    let mut secrets = s.env.secrets();
    secrets.extend(chap);
    for r in &replies {
        assert!(!r.stderr.is_empty(), "the CPI logs");
        for secret in &secrets {
            assert!(
                !r.stderr.contains(secret.as_str()),
                "secret in stderr:\n{}",
                r.stderr
            );
            assert!(
                !r.log.contains(secret.as_str()),
                "secret in log:\n{}",
                r.log
            );
        }
    }
}
