//! Answers no SoftLayer should give, through the real binary: oversized
//! (declared or streamed past the 32 MiB cap), of the wrong type, cut short.
//! Each is a clear error naming the call, never a panic, a hang or an
//! unbounded read.

mod common;

use common::setup;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

/// A server answering every request with `answer` (head and body writer).
fn serve(answer: fn(&mut std::net::TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            // Read the request head (and a small body, if any).
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            answer(&mut conn);
        }
    });
    format!("http://{addr}/rest/v3.1")
}

fn has_vm_against(endpoint: &str) -> harness::cpi::WireError {
    let s = setup();
    s.env
        .edit_config(|c| {
            c["cloud"]["properties"]["softlayer"]["api_endpoint"] = json!(endpoint);
            c["cloud"]["properties"]["softlayer"]["timeouts"]["api_retry"] = json!(0.5);
        })
        .unwrap();
    s.err("has_vm", json!(["123"]))
}

#[test]
fn a_declared_oversized_answer_is_refused_unread() {
    let e = has_vm_against(&serve(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 41943040\r\n\r\n{\"id\":");
    }));
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(e.message.contains("larger than 32 MiB"), "{e:?}");
}

#[test]
fn a_streamed_oversized_answer_stops_at_the_cap() {
    let e = has_vm_against(&serve(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = vec![b' '; 1 << 20];
        let head = format!("{:x}\r\n", chunk.len());
        // 40 MiB of whitespace, unless the client hangs up first.
        for _ in 0..40 {
            if c.write_all(head.as_bytes()).is_err()
                || c.write_all(&chunk).is_err()
                || c.write_all(b"\r\n").is_err()
            {
                return;
            }
        }
        let _ = c.write_all(b"0\r\n\r\n");
    }));
    assert!(e.message.contains("larger than 32 MiB"), "{e:?}");
}

#[test]
fn wrong_types_and_cut_bodies_are_clear_errors() {
    let e = has_vm_against(&serve(|c| {
        let body = br#"{"id": {"nested": true}, "activeTransaction": "yes"}"#;
        let _ = write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let _ = c.write_all(body);
    }));
    assert_eq!(e.kind, "Bosh::Clouds::CloudError");
    assert!(e.message.contains("unexpected answer"), "{e:?}");
    let e = has_vm_against(&serve(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\": 12");
    }));
    assert!(
        e.message
            .contains("SoftLayer_Virtual_Guest::getObject(123)"),
        "{e:?}"
    );
}
