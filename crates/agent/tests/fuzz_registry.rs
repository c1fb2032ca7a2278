//! Fuzzing the agent settings and the registry's answers: registry bodies
//! (structurally mutated settings, wrong types, truncation, huge values),
//! raw HTTP answers from a real socket (bad framing, endless or oversize
//! bodies, truncation), and the registry and agent blocks of a config.
//! Properties: never a panic; a bad answer is a `CloudError` naming the VM;
//! never more than `MAX_ANSWER_BYTES` read from the peer; bad config blocks
//! are `CpiError`s naming the key. Regression inputs live in
//! `tests/regressions/{settings,http,config}/`.

use agent::registry::{decode_settings, MAX_ANSWER_BYTES};
use agent::{user_data, AgentOptions, Delivery, RegistryClient, RegistryConfig, Settings};
use cpi::fuzz::{self, Gen, Verdict};
use cpi::{ErrorKind, VmCid};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn regressions(what: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(what)
}

fn settings_doc() -> Value {
    json!({"agent_id": "agent-1", "vm": {"name": "vm-1"},
           "mbus": "https://mbus:mbus-pw-fuzz@0.0.0.0:6868", "ntp": ["0.pool.ntp.org"],
           "blobstore": {"provider": "dav", "options": {"endpoint": "http://b", "user": "u", "password": "blob-pw-fuzz"}},
           "networks": {"default": {"type": "manual", "ip": "10.0.0.10", "netmask": "255.255.255.0",
                        "gateway": "10.0.0.1", "dns": ["10.0.0.2"], "default": ["dns", "gateway"], "cloud_properties": {}}},
           "disks": {"system": "/dev/sda", "ephemeral": "/dev/sdb", "persistent": {"disk-1": {"path": "/dev/sdc"}}},
           "env": {"bosh": {"password": "env-pw"}}, "trusted_certs": "cert"})
}

fn answer(settings: &Value) -> Vec<u8> {
    json!({"settings": settings.to_string(), "status": "ok"})
        .to_string()
        .into_bytes()
}

/// Mutates the inner settings document (inside its string) or the bytes.
fn mutate_answer(g: &mut Gen, base: &[u8], other: &[u8]) -> Vec<u8> {
    let inner = serde_json::from_slice::<Value>(base)
        .ok()
        .and_then(|v| v["settings"].as_str().map(str::to_owned))
        .and_then(|s| serde_json::from_str::<Value>(&s).ok());
    match (inner, g.below(3)) {
        (Some(doc), 0 | 1) => answer(&fuzz::mutate_json(g, &doc).0),
        _ => fuzz::mutate_bytes(g, base, other),
    }
}

fn judge_settings(vm: &VmCid, r: cpi::Result<Settings>) -> Verdict {
    match r {
        Ok(s) => {
            // What a cloud does next with settings it read: change and send them.
            let mut s = s;
            s.attach_persistent(&cpi::DiskCid::new("disk-2"), json!("/dev/sdd"));
            let doc = user_data(&s, Delivery::UserData, None);
            if doc["agent_id"] != json!(s.agent_id) {
                return Err("user data lost the agent id".into());
            }
            Ok("ok".into())
        }
        Err(e) => {
            if e.kind() != ErrorKind::Cloud {
                return Err(format!("{:?} for a bad answer: {}", e.kind(), e.message()));
            }
            if !e.message().contains(vm.as_str()) {
                return Err(format!("the error does not name the VM: {}", e.message()));
            }
            Ok(fuzz::label(e.message()))
        }
    }
}

#[test]
fn fuzz_registry_answers() {
    let vm = VmCid::new("vm-fuzz-1");
    let seeds = vec![
        answer(&settings_doc()),
        answer(
            &json!({"agent_id": "a", "vm": {"name": "v"}, "networks": {}, "disks": {}, "env": {}}),
        ),
    ];
    fuzz::run(
        "registry_answers",
        300,
        &regressions("settings"),
        seeds,
        mutate_answer,
        |input| judge_settings(&vm, decode_settings(&vm, input)),
    );
}

fn registry_seed() -> Value {
    json!({"registry": {"endpoint": "http://admin:reg-pw@10.0.0.6:25777", "user": "admin", "password": "reg-pw",
                        "Protocol": "http", "Host": "10.0.0.6", "Port": 25777},
           "agent": {"mbus": "nats://n:p@1.2.3.4:4222", "ntp": ["a"], "blobstore": {"provider": "local", "options": {}}}})
}

#[test]
fn fuzz_registry_and_agent_config_blocks() {
    let seeds = vec![registry_seed().to_string().into_bytes()];
    fuzz::run(
        "config_blocks",
        300,
        &regressions("config"),
        seeds,
        |g, base, other| match serde_json::from_slice::<Value>(base) {
            Ok(doc) if !g.one_in(4) => serde_json::to_vec(&fuzz::mutate_json(g, &doc).0).unwrap(),
            _ => fuzz::mutate_bytes(g, base, other),
        },
        |input| {
            cpi::secret::forget_all();
            let Ok(doc) = serde_json::from_slice::<Value>(input) else {
                return Ok("not json".into());
            };
            let mut label = String::new();
            match cpi::config::parse::<RegistryConfig>(
                doc.get("registry").cloned().unwrap_or(Value::Null),
            ) {
                Ok(p) => match p.config.resolve("registry") {
                    Ok(r) => {
                        let _ = p.config.endpoint_with_credentials();
                        if r.base.password().is_some() || !r.base.username().is_empty() {
                            return Err("credentials left in the base URL".into());
                        }
                        label.push_str("resolved;");
                    }
                    Err(e) => {
                        if !e.message().starts_with("registry.") || e.kind() != ErrorKind::Cpi {
                            return Err(format!("error not naming the key: {}", e.message()));
                        }
                        label.push_str(&fuzz::label(e.message()));
                    }
                },
                Err(e) => label.push_str(&fuzz::label(e.message())),
            }
            match cpi::config::parse::<AgentOptions>(
                doc.get("agent").cloned().unwrap_or(Value::Null),
            ) {
                Ok(_) => label.push_str("agent ok"),
                Err(e) => label.push_str(&fuzz::label(e.message())),
            }
            Ok(label)
        },
    );
}

/// A registry that answers every connection with the bytes it is given,
/// then (for `endless`) keeps sending chunks; counts the bytes it sent.
struct RawPeer {
    port: u16,
    reply: Arc<Mutex<(Vec<u8>, bool)>>,
    sent: Arc<AtomicU64>,
}

impl RawPeer {
    fn start() -> RawPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let reply: Arc<Mutex<(Vec<u8>, bool)>> = Arc::default();
        let sent = Arc::new(AtomicU64::new(0));
        let (r, s) = (reply.clone(), sent.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let (bytes, endless) = r.lock().unwrap().clone();
                if conn.write_all(&bytes).is_ok() {
                    s.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                if endless {
                    let chunk = format!("10000\r\n{}\r\n", "s".repeat(0x10000));
                    while conn.write_all(chunk.as_bytes()).is_ok() {
                        s.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
            }
        });
        RawPeer { port, reply, sent }
    }

    fn client(&self) -> RegistryClient {
        let cfg = RegistryConfig {
            endpoint: Some(format!("http://127.0.0.1:{}", self.port)),
            user: Some("admin".into()),
            password: Some(cpi::Secret::new("reg-pw-raw")),
            ..Default::default()
        };
        RegistryClient::new(&cfg, "registry").unwrap()
    }

    fn get(&self, bytes: &[u8], endless: bool) -> cpi::Result<Option<Settings>> {
        *self.reply.lock().unwrap() = (bytes.to_vec(), endless);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(self.client().get(&VmCid::new("vm-raw-1")))
    }
}

fn http(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("HTTP/1.1 {status}\r\n{headers}Connection: close\r\n\r\n").into_bytes();
    v.extend_from_slice(body);
    v
}

#[test]
fn an_oversize_or_endless_answer_is_refused_by_reading_at_most_the_cap() {
    let peer = RawPeer::start();
    // Declared too big: refused before reading.
    let e = peer
        .get(
            &http("200 OK", "Content-Length: 10000000000\r\n", b"{"),
            false,
        )
        .unwrap_err();
    assert!(e.message().contains("larger than"), "{}", e.message());
    // Endless chunked body: refused once past the cap.
    let e = peer
        .get(&http("200 OK", "Transfer-Encoding: chunked\r\n", b""), true)
        .unwrap_err();
    assert!(e.message().contains("larger than"), "{}", e.message());
    assert!(e.message().contains("vm-raw-1"), "{}", e.message());
    // The peer could send no more than the cap plus what sits in socket buffers.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let sent = peer.sent.load(Ordering::Relaxed);
    assert!(
        sent < (MAX_ANSWER_BYTES as u64) * 16,
        "{sent} bytes were read"
    );
    // Truncated body.
    let e = peer
        .get(
            &http("200 OK", "Content-Length: 500\r\n", b"{\"settings\": \"{"),
            false,
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cloud, "{}", e.message());
}

#[test]
fn fuzz_registry_http_answers() {
    let peer = RawPeer::start();
    let body = answer(&settings_doc());
    let seeds = vec![
        http(
            "200 OK",
            &format!("Content-Length: {}\r\n", body.len()),
            &body,
        ),
        http(
            "200 OK",
            "Transfer-Encoding: chunked\r\n",
            format!(
                "{:x}\r\n{}\r\n0\r\n\r\n",
                body.len(),
                String::from_utf8_lossy(&body)
            )
            .as_bytes(),
        ),
        http("404 Not Found", "Content-Length: 0\r\n", b""),
        http("500 Internal Server Error", "Content-Length: 2\r\n", b"no"),
    ];
    let vm = VmCid::new("vm-raw-1");
    fuzz::run(
        "registry_http",
        40,
        &regressions("http"),
        seeds,
        |g, base, other| fuzz::mutate_bytes(g, base, other),
        |input| match peer.get(input, false) {
            Ok(None) => Ok("none".into()),
            Ok(Some(s)) => judge_settings(&vm, Ok(s)),
            Err(e) if e.kind() == ErrorKind::Cloud => Ok(fuzz::label(e.message())),
            Err(e) => Err(format!("{:?}: {}", e.kind(), e.message())),
        },
    );
}
