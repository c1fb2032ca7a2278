//! The moto server: found (`MOTO_SERVER`, else `<workspace>/.venv/bin/moto_server`),
//! started on a free loopback port, waited on until it answers, and killed
//! when dropped.

use cpi::wait::{self, Backoff};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct MotoServer {
    child: Child,
    pub port: u16,
}

/// Where the moto server binary is, if installed.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    p.exists().then_some(p)
}

impl MotoServer {
    pub fn start() -> Result<MotoServer, String> {
        let bin = binary().ok_or_else(|| {
            "moto_server not found: set MOTO_SERVER or run `python3 -m venv .venv && .venv/bin/pip install 'moto[server]==5.2.5'` at the workspace root".to_owned()
        })?;
        let port = free_port()?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Refuse instance types EC2 does not have, as EC2 does.
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = MotoServer { child, port };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let up = rt.block_on(wait::wait_for(
            format!("moto on 127.0.0.1:{port}"),
            Backoff::new(
                Duration::from_millis(50),
                Duration::from_millis(500),
                Duration::from_secs(60),
            ),
            || {
                let exited = server.child.try_wait().ok().flatten();
                async move {
                    if let Some(status) = exited {
                        return Err(cpi::Error::cloud(format!("moto_server exited: {status}")));
                    }
                    Ok(answers(port).then_some(()))
                }
            },
        ));
        up.map_err(|e| e.message().to_owned())?;
        let _ = &mut server;
        Ok(server)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Whether moto answers HTTP on the port.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && buf.starts_with(b"HTTP/1."))
}
