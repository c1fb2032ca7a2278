//! Every body this CPI decodes, fed generated hostile versions of a valid
//! answer: each prefix (a truncated body), each value swapped for every
//! other JSON type, deep nesting, huge strings and random bytes. No decoder
//! may panic; each answers a value or a decode error. And no answer is read
//! past the 16 MiB cap, announced or streamed.

use crate::session::{decode, read, MAX_BODY};
use crate::types::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

type Decoder = fn(&[u8]) -> bool;

fn d<T: serde::de::DeserializeOwned>(b: &[u8]) -> bool {
    decode::<T>("test", b).is_ok()
}

/// A valid answer for each decoder.
fn samples() -> Vec<(&'static str, Decoder, Value)> {
    let server = json!({"id": "s", "name": "vm-1", "status": "ACTIVE", "OS-EXT-AZ:availability_zone": "z",
        "flavor": {"id": "1"}, "metadata": {"registry_key": "vm-1"}, "fault": {"message": "m"}});
    let flavor = json!({"id": "1", "name": "m1", "vcpus": 1, "ram": 2048, "disk": 20, "OS-FLV-EXT-DATA:ephemeral": 10, "swap": ""});
    let volume = json!({"id": "v", "status": "available", "size": 1, "availability_zone": "z", "attachments": [{"server_id": "s"}]});
    let port = json!({"id": "p", "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [{"ip_address": "10.0.0.1", "subnet_id": "sn"}]});
    vec![
        (
            "server",
            d::<ServerBody> as Decoder,
            json!({ "server": server }),
        ),
        ("servers", d::<ServersBody>, json!({"servers": [server]})),
        ("flavors", d::<FlavorsBody>, json!({"flavors": [flavor]})),
        ("flavor", d::<FlavorBody>, json!({ "flavor": flavor })),
        (
            "attachments",
            d::<AttachmentsBody>,
            json!({"volumeAttachments": [{"volumeId": "v", "device": "/dev/vdb"}]}),
        ),
        (
            "attachment",
            d::<AttachmentBody>,
            json!({"volumeAttachment": {"volumeId": "v", "device": "/dev/vdb"}}),
        ),
        ("volume", d::<VolumeBody>, json!({ "volume": volume })),
        ("volumes", d::<VolumesBody>, json!({"volumes": [volume]})),
        (
            "snapshot",
            d::<SnapshotBody>,
            json!({"snapshot": {"id": "n", "status": "available"}}),
        ),
        (
            "snapshots",
            d::<SnapshotsBody>,
            json!({"snapshots": [{"id": "n", "status": "available"}]}),
        ),
        ("image", d::<Image>, json!({"id": "i", "status": "active"})),
        (
            "images",
            d::<crate::stemcell::Images>,
            json!({"images": [{"id": "i", "status": "active"}]}),
        ),
        ("port", d::<PortBody>, json!({ "port": port })),
        ("ports", d::<PortsBody>, json!({"ports": [port]})),
        (
            "security groups",
            d::<SecurityGroupsBody>,
            json!({"security_groups": [{"id": "g", "name": "default"}]}),
        ),
        (
            "floating ips",
            d::<FloatingIpsBody>,
            json!({"floatingips": [{"id": "f"}]}),
        ),
        (
            "token",
            d::<crate::keystone::TokenBody>,
            json!({"token": {"expires_at": "2099-01-01T00:00:00Z",
            "catalog": [{"type": "compute", "endpoints": [{"interface": "public", "region": "R", "url": "http://x"}]}]}}),
        ),
        (
            "pools",
            d::<crate::lbaas::Pools>,
            json!({"pools": [{"id": "p"}]}),
        ),
        (
            "members",
            d::<crate::lbaas::Members>,
            json!({"members": [{"id": "m", "address": "10.0.0.1", "protocol_port": 80}]}),
        ),
        (
            "member",
            d::<crate::lbaas::MemberBody>,
            json!({"member": {"id": "m"}}),
        ),
        (
            "server groups",
            d::<crate::server_group::Groups>,
            json!({"server_groups": [{"id": "g", "name": "n", "members": ["s"]}]}),
        ),
        (
            "server group",
            d::<crate::server_group::GroupBody>,
            json!({"server_group": {"id": "g"}}),
        ),
    ]
}

/// Every scalar, array or object in `v`, each replaced in turn by `with`.
fn swaps(v: &Value, with: &Value) -> Vec<Value> {
    let mut out = vec![with.clone()];
    match v {
        Value::Object(m) => {
            for (k, inner) in m {
                for s in swaps(inner, with) {
                    let mut c = v.clone();
                    c[k.as_str()] = s;
                    out.push(c);
                }
            }
        }
        Value::Array(a) => {
            for (i, inner) in a.iter().enumerate() {
                for s in swaps(inner, with) {
                    let mut c = v.clone();
                    c[i] = s;
                    out.push(c);
                }
            }
        }
        _ => {}
    }
    out
}

#[test]
fn decoders_take_the_valid_answer_and_survive_hostile_ones() {
    let others = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e308),
        json!(18446744073709551615u64),
        json!(""),
        json!("\u{0}\u{feff}é"),
        json!([]),
        json!({}),
        json!([[[[[[[[]]]]]]]]),
    ];
    let mut rng = StdRng::seed_from_u64(17);
    let mut runs = 0u64;
    for (name, decoder, valid) in samples() {
        let bytes = serde_json::to_vec(&valid).unwrap();
        assert!(decoder(&bytes), "{name}: the valid answer must decode");
        // Truncated at every length: never a panic, and the empty and
        // half-written ones never decode.
        for n in 0..bytes.len() {
            let ok = decoder(&bytes[..n]);
            assert!(!(ok && n == 0), "{name}: empty body decoded");
            runs += 1;
        }
        for with in &others {
            for v in swaps(&valid, with) {
                decoder(&serde_json::to_vec(&v).unwrap());
                runs += 1;
            }
        }
        // Random bytes, and random edits of the valid answer.
        for _ in 0..300 {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            decoder(&b);
            let junk: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
            decoder(&junk);
            runs += 2;
        }
        // Deep nesting (serde_json stops at 128 levels) and a huge string.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(!decoder(deep.as_bytes()), "{name}");
        let huge = format!("{{\"id\": \"{}\"}}", "x".repeat(4 << 20));
        decoder(huge.as_bytes());
        runs += 2;
    }
    assert!(runs > 10_000, "{runs} inputs");
}

#[test]
fn error_bodies_and_hints_survive_anything() {
    let mut rng = StdRng::seed_from_u64(5);
    let headers = reqwest::header::HeaderMap::new();
    for _ in 0..2000 {
        let junk: Vec<u8> = (0..rng.random_range(0..300))
            .map(|_| rng.random())
            .collect();
        let text = String::from_utf8_lossy(&junk);
        let m = crate::error::cloud_message(&text);
        assert!(m.chars().count() <= 200 || text.contains("message"), "{m}");
        let _ = crate::session::retry_after(&headers, &text);
    }
    let mut h = reqwest::header::HeaderMap::new();
    for v in [
        "-5",
        "1e400",
        "NaN",
        "inf",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "99999999",
    ] {
        h.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
        let d = crate::session::retry_after(&h, "");
        assert!(d.is_none_or(|d| d.as_secs() <= 60), "{v}: {d:?}");
    }
    let body = r#"{"overLimit": {"retryAfter": "NaN"}}"#;
    assert!(crate::session::retry_after(&reqwest::header::HeaderMap::new(), body).is_none());
}

/// A one-shot HTTP server answering `head` then `body_len` bytes of `x`.
async fn serve_once(head: String, body_len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(head.as_bytes()).await;
        let chunk = vec![b'x'; 1 << 20];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(chunk.len());
            if s.write_all(&chunk[..n]).await.is_err() {
                return;
            }
            left -= n;
        }
    });
    format!("http://{addr}/")
}

#[test]
fn answers_over_the_cap_are_refused_announced_or_not() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let big = MAX_BODY + 1;
        let url = serve_once(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {big}\r\n\r\n"),
            0,
        )
        .await;
        let e = read("GET /x", http.get(&url).send().await.unwrap())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("16 MiB"), "{e}");
        // Not announced: read until the cap, then refused.
        let url = serve_once("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".into(), big).await;
        let e = read("GET /x", http.get(&url).send().await.unwrap())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("16 MiB"), "{e}");
        // Cut short of its announced length: a lost answer (transport).
        let url = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".into(), 10).await;
        let e = read("GET /x", http.get(&url).send().await.unwrap())
            .await
            .unwrap_err();
        assert!(matches!(e, crate::error::OsError::Transport { .. }), "{e}");
    });
}
