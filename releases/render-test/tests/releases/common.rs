//! What every cloud's tests do: start its environment, render, call.

use harness::registry::RegistryServer;
use harness::Environment;
use release_render::{err, ok, render, Job, Rendered};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct World {
    pub env: Box<dyn Environment>,
    pub registry: RegistryServer,
}

type Start =
    fn(&std::path::Path, &harness::RegistryEndpoint) -> Result<Box<dyn Environment>, String>;

impl World {
    pub fn start(job: &Job, start: Start) -> World {
        let registry = RegistryServer::start().expect("registry");
        let env = start(&release_render::built(job.binary), registry.endpoint())
            .unwrap_or_else(|e| panic!("starting the {} environment: {e}", job.binary));
        World { env, registry }
    }

    /// The config the environment wrote for its own CPI runs: where the
    /// fake listens and its credentials, to copy into manifests.
    pub fn config(&self) -> Value {
        let command = self.env.cpi();
        let arg = command
            .args
            .iter()
            .find(|a| a.ends_with(".json"))
            .expect("a config argument");
        let path = arg.rsplit('=').next().unwrap();
        serde_json::from_slice(&std::fs::read(path).expect("env config")).expect("env config JSON")
    }
}

/// Renders `manifest`, then `info` and `has_vm(absent)` through the
/// rendered bin/cpi: the CPI accepted the config and reached the cloud.
/// Answers the rendering and `info`'s result.
pub fn accepted(job: &Job, manifest: &Value, absent_vm: &str, label: &str) -> (Rendered, Value) {
    let rendered = render(job, manifest).unwrap_or_else(|e| panic!("{label}: rendering: {e}"));
    let cpi = rendered.cpi();
    let info = ok(&cpi, "info", vec![]);
    assert!(info["stemcell_formats"].is_array(), "{label}: info {info}");
    let has = ok(&cpi, "has_vm", vec![json!(absent_vm)]);
    assert_eq!(has, json!(false), "{label}: has_vm of an absent VM");
    (rendered, info)
}

/// Renders `manifest` and makes the first cloud call; its error message.
pub fn refused(job: &Job, manifest: &Value, absent_vm: &str, label: &str) -> String {
    let rendered = render(job, manifest).unwrap_or_else(|e| panic!("{label}: rendering: {e}"));
    err(&rendered.cpi(), "has_vm", vec![json!(absent_vm)])
}

/// The renderer's refusal (BOSH fails the deploy at this point).
pub fn not_rendered(job: &Job, manifest: &Value, label: &str) -> String {
    match render(job, manifest) {
        Ok(r) => panic!(
            "{label}: rendered where it should not:\n{}",
            r.file("config/cpi.json")
        ),
        Err(e) => e,
    }
}

/// A forwarding HTTP proxy on loopback that counts the requests it
/// carried: proof that the CPI honoured the proxy the job exported.
pub struct Proxy {
    pub url: String,
    carried: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let carried = Arc::new(AtomicUsize::new(0));
        let count = carried.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let count = count.clone();
                std::thread::spawn(move || forward(client, &count));
            }
        });
        Proxy { url, carried }
    }

    pub fn carried(&self) -> usize {
        self.carried.load(Ordering::SeqCst)
    }
}

/// One connection: the first request line names the origin
/// (`GET http://host:port/path`); bytes are then copied both ways.
fn forward(mut client: TcpStream, count: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let line = String::from_utf8_lossy(&head).into_owned();
    let Some(origin) = line
        .split_whitespace()
        .nth(1)
        .and_then(|u| u.strip_prefix("http://"))
        .and_then(|u| u.split('/').next())
        .map(str::to_owned)
    else {
        return;
    };
    let Ok(mut server) = TcpStream::connect(&origin) else {
        return;
    };
    count.fetch_add(1, Ordering::SeqCst);
    if server.write_all(&head).is_err() {
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Both);
    });
    let _ = std::io::copy(&mut client, &mut server);
    let _ = server.shutdown(std::net::Shutdown::Both);
}
