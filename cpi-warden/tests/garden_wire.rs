//! The fake speaks real Garden's wire, checked with a raw socket (the
//! hijacked process stream: 201 with a chunked header, then raw NDJSON; the
//! output on separate attach connections closed when the process ends), and
//! the CPI's Garden client works against it over tcp and a unix socket.

use cpi_warden::garden::{ContainerSpec, Endpoint, Garden, ProcessSpec};
use fake_garden::FakeGarden;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn rootfs(dir: &std::path::Path) -> std::path::PathBuf {
    let r = dir.join("stemcell");
    std::fs::create_dir_all(r.join("tmp")).unwrap();
    std::fs::create_dir_all(r.join("var/vcap/bosh")).unwrap();
    r
}

/// Sends a request, returns the status line, headers and the reader left
/// at the first byte after the head.
fn raw(addr: &str, req: &str) -> (String, Vec<String>, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        headers.push(h.trim().to_owned());
    }
    (status.trim().to_owned(), headers, r)
}

/// The body of a sized (Content-Length) answer.
fn sized_body(headers: &[String], r: &mut BufReader<TcpStream>) -> String {
    let n: usize = headers
        .iter()
        .find_map(|h| {
            h.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a Content-Length");
    let mut b = vec![0u8; n];
    r.read_exact(&mut b).unwrap();
    String::from_utf8(b).unwrap()
}

fn post(path: &str, body: &Value) -> String {
    let b = body.to_string();
    format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len())
}

#[test]
fn the_process_stream_is_hijacked_raw_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGarden::start("127.0.0.1:0", &dir.path().join("containers"), None).unwrap();
    let addr = fake.addr().to_string();
    let spec = json!({"handle": "c1", "rootfs": rootfs(dir.path()), "network": "10.244.0.5/24"});
    let (status, headers, mut r) = raw(&addr, &post("/containers", &spec));
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(
        serde_json::from_str::<Value>(&sized_body(&headers, &mut r)).unwrap(),
        json!({"Handle": "c1"})
    );

    let run = json!({"path": "bash", "args": ["-c", "echo out && cat /nope"], "user": "root"});
    let (status, headers, mut r) = raw(&addr, &post("/containers/c1/processes", &run));
    assert_eq!(status, "HTTP/1.1 201 Created");
    assert!(
        headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("Transfer-Encoding: chunked")),
        "{headers:?}"
    );
    assert!(
        !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("content-length")),
        "{headers:?}"
    );
    let mut first = String::new();
    r.read_line(&mut first).unwrap();
    // Raw JSON, not a hex chunk size.
    let first: Value = serde_json::from_str(first.trim()).expect("the first line is raw JSON");
    let (pid, sid) = (
        first["process_id"].as_str().unwrap().to_owned(),
        first["stream_id"].as_str().unwrap().to_owned(),
    );

    let mut outputs = Vec::new();
    for which in ["stdout", "stderr"] {
        let req = format!(
            "GET /containers/c1/processes/{pid}/attaches/{sid}/{which} HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let (status, _, mut a) = raw(&addr, &req);
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut out = String::new();
        a.read_to_string(&mut out).unwrap(); // returns only because the server closes it
        outputs.push(out);
    }
    assert_eq!(outputs[0], "out\n");
    assert!(outputs[1].contains("cat: /nope"), "{}", outputs[1]);
    let mut last = String::new();
    r.read_line(&mut last).unwrap();
    let last: Value = serde_json::from_str(last.trim()).unwrap();
    assert_eq!(last, json!({"process_id": pid, "exit_status": 1}));

    // Go-style error bodies.
    let (status, headers, mut r) = raw(
        &addr,
        "GET /containers/nope/info HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
    let b = sized_body(&headers, &mut r);
    let e: Value = serde_json::from_str(&b).unwrap_or(Value::Null);
    assert_eq!(e["Type"], "ContainerNotFoundError", "{b}");
    assert_eq!(e["Handle"], "nope");
}

fn client_round_trip(garden: &Garden, stemcell: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        garden.ping().await.unwrap();
        assert!(
            garden.capacity().await.unwrap()["max_containers"]
                .as_u64()
                .unwrap()
                > 0
        );
        let mut props = BTreeMap::new();
        props.insert("owner".to_owned(), "test".to_owned());
        let spec = ContainerSpec {
            handle: "h1".into(),
            rootfs: stemcell.to_string_lossy().into(),
            image: json!({}),
            bind_mounts: vec![],
            network: String::new(),
            properties: props.clone(),
            privileged: true,
        };
        assert_eq!(garden.create(&spec).await.unwrap(), "h1");
        assert_eq!(garden.list(&props).await.unwrap(), vec!["h1".to_owned()]);
        props.insert("owner".into(), "other".into());
        assert!(garden.list(&props).await.unwrap().is_empty());
        let info = garden.info("h1").await.unwrap();
        assert_eq!(info.state, "active");
        assert!(!info.container_ip.is_empty());
        assert!(garden
            .bulk_info(&["h1".into(), "gone".into()])
            .await
            .unwrap()
            .contains_key("h1"));
        garden.set_property("h1", "k", "v").await.unwrap();
        assert_eq!(garden.property("h1", "k").await.unwrap(), "v");
        assert_eq!(garden.net_in("h1", 0, 8080).await.unwrap().1, 8080);

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f.txt", &b"hello"[..]).unwrap();
        garden
            .stream_in("h1", "/var/vcap/bosh/", &b.into_inner().unwrap())
            .await
            .unwrap();
        let r = garden
            .run(
                "h1",
                &ProcessSpec::script("[ -f '/var/vcap/bosh/f.txt' ] && cat /var/vcap/bosh/f.txt"),
            )
            .await
            .unwrap();
        assert_eq!((r.exit_status, r.stdout.as_slice()), (0, &b"hello"[..]));
        let r = garden
            .run(
                "h1",
                &ProcessSpec::script("[ -f '/var/vcap/bosh/missing' ]"),
            )
            .await
            .unwrap();
        assert_eq!(r.exit_status, 1);
        let tar = garden
            .stream_out("h1", "/var/vcap/bosh/f.txt")
            .await
            .unwrap();
        let mut a = tar::Archive::new(&tar[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        garden.stop("h1", false).await.unwrap();
        garden.destroy("h1").await.unwrap();
        let e = garden.destroy("h1").await.unwrap_err();
        assert_eq!(e.kind(), cpi::ErrorKind::VmNotFound);
    });
}

#[test]
fn the_client_works_over_tcp_and_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let stemcell = rootfs(dir.path());
    let sock = dir.path().join("garden.sock");
    let fake =
        FakeGarden::start("127.0.0.1:0", &dir.path().join("containers"), Some(&sock)).unwrap();
    client_round_trip(
        &Garden::new(Endpoint::Tcp(fake.addr().to_string())),
        &stemcell,
    );
    client_round_trip(&Garden::new(Endpoint::Unix(sock.clone())), &stemcell);
}
