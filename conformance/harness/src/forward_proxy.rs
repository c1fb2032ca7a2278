//! A forwarding HTTP proxy on loopback, to prove a CPI honours the
//! `http_proxy` its job exports: it records every request it carried (head
//! and body) and passes it on without its own `Proxy-Authorization`, asking
//! the origin to close after its answer, so each connection carries one
//! request.

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
    /// A form parameter of a query-style request body (EC2's), decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn action(&self) -> Option<String> {
        self.param("Action")
    }
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

    /// The proxy's URL, as a job's `env.http_proxy` names it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
    let mut onward: String = head
        .split_inclusive("\r\n")
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("proxy-authorization:")
                && !l.starts_with("connection:")
                && !l.starts_with("proxy-connection:")
                && l != "\r\n"
        })
        .collect();
    onward.push_str("Connection: close\r\n\r\n");
    if server.write_all(onward.as_bytes()).is_err() || server.write_all(&body).is_err() {
        return;
    }
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
}
