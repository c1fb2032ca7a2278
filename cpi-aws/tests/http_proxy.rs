//! The job's `env.http_proxy`/`https_proxy`/`no_proxy`, which its bin/cpi
//! exports: the CPI's EC2 requests go through the proxy the environment
//! names, with its credentials, none when NO_PROXY names the host, and the
//! credentials never reach a log.

mod common;

use harness::cpi::Cpi;
use harness::forward_proxy::ForwardProxy;
use harness::Environment;
use serde_json::json;
use std::net::TcpListener;
use std::time::Duration;

const PROXY_PASSWORD: &str = "proxy-pass-5b1e";

fn cpi_with(f: &common::Fixture, env: &[(&str, String)]) -> Cpi {
    let mut cmd = f.env.cpi();
    cmd.env
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Cpi::new(cmd, Duration::from_secs(120)).unwrap()
}

#[test]
fn ec2_requests_go_through_the_environments_proxy_unless_no_proxy_names_the_host() {
    let Some(f) = common::fixture() else { return };
    let proxy = ForwardProxy::start();
    let url = format!("http://bosh:{PROXY_PASSWORD}@127.0.0.1:{}", proxy.port);

    for var in ["http_proxy", "HTTP_PROXY"] {
        let before = proxy.carried().len();
        let cpi = cpi_with(&f, &[(var, url.clone())]);
        let r = cpi
            .call("has_vm", vec![json!("i-0123456789abcdef0")])
            .unwrap();
        assert!(r.error.is_none(), "{var}: {:?}", r.error);
        assert_eq!(r.result, json!(false));
        let heads = proxy.carried();
        assert!(
            heads.len() > before,
            "{var}: no request went through the proxy"
        );
        let last = heads.last().unwrap();
        assert_eq!(last.action().as_deref(), Some("DescribeInstances"));
        assert!(
            last.head
                .to_ascii_lowercase()
                .contains("proxy-authorization: basic"),
            "{var}: the proxy's credentials were not sent: {}",
            last.head
        );
        for (what, text) in [("stderr", &r.stderr), ("log", &r.log)] {
            assert!(
                !text.contains(PROXY_PASSWORD),
                "{var}: the proxy password is in the CPI's {what}"
            );
        }
    }

    let before = proxy.carried().len();
    let cpi = cpi_with(
        &f,
        &[
            ("http_proxy", url.clone()),
            ("https_proxy", url.clone()),
            ("no_proxy", "localhost,127.0.0.1".into()),
        ],
    );
    let r = cpi
        .call("has_vm", vec![json!("i-0123456789abcdef0")])
        .unwrap();
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(proxy.carried().len(), before, "no_proxy was not honoured");

    // A proxy that is down fails the call, naming no credentials: proof
    // the requests depend on it.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!(
        "http://bosh:{PROXY_PASSWORD}@127.0.0.1:{}",
        dead.local_addr().unwrap().port()
    );
    drop(dead);
    let cpi = cpi_with(&f, &[("http_proxy", dead_url)]);
    let r = cpi
        .call("has_vm", vec![json!("i-0123456789abcdef0")])
        .unwrap();
    let e = r.error.expect("a dead proxy fails the call");
    assert!(!e.message.contains(PROXY_PASSWORD), "{}", e.message);
    assert!(
        !r.stderr.contains(PROXY_PASSWORD),
        "stderr has the password"
    );
}
