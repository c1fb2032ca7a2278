//! A forwarding HTTP proxy on loopback for the CPI's `http_proxy`: it
//! records every request it carried (head and body) and passes it on
//! without its own `Proxy-Authorization`. The env-aws fault proxy behind
//! it answers `Connection: close`, so each connection carries one request.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct ForwardProxy {
    pub port: u16,
    carried: Arc<Mutex<Vec<Carried>>>,
}

#[derive(Clone, Debug)]
pub struct Carried {
    pub head: String,
    pub body: String,
}

impl Carried {
    /// A form parameter of an EC2 query request, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (decode(k) == name).then(|| decode(v))
        })
    }

    pub fn action(&self) -> Option<String> {
        self.param("Action")
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ForwardProxy {
    pub fn start() -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let carried: Arc<Mutex<Vec<Carried>>> = Arc::default();
        let c = carried.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let c = c.clone();
                std::thread::spawn(move || forward(client, &c));
            }
        });
        ForwardProxy { port, carried }
    }

    pub fn carried(&self) -> Vec<Carried> {
        self.carried.lock().unwrap().clone()
    }
}

fn forward(mut client: TcpStream, carried: &Mutex<Vec<Carried>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if client.read_exact(&mut body).is_err() {
        return;
    }
    let Some(origin) = head
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_prefix("http://"))
        .and_then(|u| u.split('/').next())
        .map(str::to_owned)
    else {
        return;
    };
    carried.lock().unwrap().push(Carried {
        head: head.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let Ok(mut server) = TcpStream::connect(&origin) else {
        return;
    };
    let onward: String = head
        .split_inclusive("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("proxy-authorization:"))
        .collect();
    if server.write_all(onward.as_bytes()).is_err() || server.write_all(&body).is_err() {
        return;
    }
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
}
