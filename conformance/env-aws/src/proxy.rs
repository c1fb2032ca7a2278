//! A fault-injecting HTTP proxy in front of moto, which has no fault
//! injection of its own: the CPI talks to moto through it, the inspector
//! directly. One request per connection (answers carry `Connection: close`),
//! which is all the SDK needs and keeps the proxy small.

use harness::Fault;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Faults {
    transient_left: u32,
    persistent: bool,
    latency: Option<Duration>,
    drop_next: bool,
    /// Fail the request after the next RunInstances (the VM then exists).
    after_run_instances: bool,
    fail_next: bool,
}

pub struct FaultProxy {
    pub port: u16,
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> Result<FaultProxy, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("fault proxy: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let faults: Arc<Mutex<Faults>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (faults.clone(), stop.clone());
        std::thread::Builder::new()
            .name("moto-fault-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let f = f.clone();
                        std::thread::spawn(move || {
                            let _ = handle(conn, upstream_port, &f);
                        });
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(FaultProxy { port, faults, stop })
    }

    pub fn inject(&self, fault: Fault) -> bool {
        let mut f = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        match fault {
            Fault::CreateVmAfterVmExists => f.after_run_instances = true,
            Fault::Transient { times } => f.transient_left = times,
            Fault::Persistent => f.persistent = true,
            Fault::Latency(d) => f.latency = Some(d),
            Fault::DropConnection => f.drop_next = true,
        }
        true
    }

    pub fn clear(&self) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = Faults::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What to do with one request.
enum Act {
    Forward,
    Answer(u16, &'static str, &'static str),
    Drop,
}

fn handle(client: TcpStream, upstream_port: u16, faults: &Mutex<Faults>) -> std::io::Result<()> {
    let _ = client.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    const RUN_INSTANCES: &[u8] = b"Action=RunInstances";
    let is_run_instances = body
        .windows(RUN_INSTANCES.len())
        .any(|w| w == RUN_INSTANCES);

    let (act, latency) = {
        let mut f = faults.lock().unwrap_or_else(|e| e.into_inner());
        let act = if f.drop_next {
            f.drop_next = false;
            Act::Drop
        } else if f.persistent {
            Act::Answer(500, "InternalError", "injected persistent failure")
        } else if f.transient_left > 0 {
            f.transient_left -= 1;
            Act::Answer(503, "RequestLimitExceeded", "injected throttling")
        } else if f.fail_next {
            f.fail_next = false;
            Act::Answer(
                400,
                "InvalidParameterValue",
                "injected failure after RunInstances",
            )
        } else {
            if is_run_instances && f.after_run_instances {
                f.after_run_instances = false;
                f.fail_next = true;
            }
            Act::Forward
        };
        (act, f.latency)
    };
    if let Some(d) = latency {
        std::thread::sleep(d);
    }
    let mut client = client;
    match act {
        Act::Drop => {
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Act::Answer(status, code, message) => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code>\
                 <Message>{message}</Message></Error></Errors><RequestID>injected</RequestID></Response>"
            );
            let reason = if status == 400 {
                "Bad Request"
            } else {
                "Error"
            };
            write!(
                client,
                "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            )?;
            client.flush()
        }
        Act::Forward => {
            let mut up = TcpStream::connect(("127.0.0.1", upstream_port))?;
            up.write_all(&head)?;
            up.write_all(&body)?;
            up.flush()?;
            let mut answer = Vec::new();
            up.read_to_end(&mut answer)?;
            client.write_all(&answer)?;
            client.flush()
        }
    }
}
