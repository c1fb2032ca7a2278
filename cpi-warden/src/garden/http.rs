//! A minimal HTTP/1.1 client over tcp or a unix socket: one connection per
//! request, bodies by Content-Length, chunked or to EOF, and access to the
//! raw connection after the head (Garden hijacks process connections).

use super::error::GardenError;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Conn = BufReader<Box<dyn Io>>;

/// Where Garden listens (`Warden.ConnectNetwork` / `ConnectAddress`).
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(String),
    Unix(std::path::PathBuf),
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn transport(what: &str, e: impl std::fmt::Display) -> GardenError {
    GardenError::Transport {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

pub async fn connect(ep: &Endpoint, what: &str) -> Result<Conn, GardenError> {
    let io: Box<dyn Io> = match ep {
        Endpoint::Tcp(addr) => {
            let s = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| transport(what, format!("connecting to {addr} timed out")))?
                .map_err(|e| transport(what, format!("connecting to {addr}: {e}")))?;
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Endpoint::Unix(path) => {
            let s = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| {
                    transport(what, format!("connecting to {} timed out", path.display()))
                })?
                .map_err(|e| transport(what, format!("connecting to {}: {e}", path.display())))?;
            Box::new(s)
        }
    };
    Ok(BufReader::new(io))
}

pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends a request; a body is sent with its Content-Length.
pub async fn send(
    conn: &mut Conn,
    method: &str,
    target: &str,
    ctype: &str,
    body: &[u8],
    what: &str,
) -> Result<(), GardenError> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: api\r\nUser-Agent: cpi-warden\r\n");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    // One write, one segment: with TCP_NODELAY a separate body write is a
    // second packet and a second read on the server.
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body);
    let w = conn.get_mut();
    w.write_all(&msg).await.map_err(|e| transport(what, e))?;
    w.flush().await.map_err(|e| transport(what, e))
}

/// The most a line of an answer's head may hold.
pub const MAX_HEAD_LINE: usize = 64 * 1024;
/// The most an answer's head may hold, all lines together.
pub const MAX_HEAD: usize = 256 * 1024;
/// The most an answer's body may hold (settings files, info, lists: far
/// less; a peer claiming more is refused, not believed).
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Reads up to and including `\n`, at most `max` bytes; the line as text
/// (invalid UTF-8 replaced). `Ok(None)` at a clean EOF before any byte.
pub async fn read_line_bounded(
    conn: &mut Conn,
    max: usize,
    what: &str,
) -> Result<Option<String>, GardenError> {
    let mut line = Vec::new();
    loop {
        let buf = conn.fill_buf().await.map_err(|e| transport(what, e))?;
        if buf.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            // Cut off inside a line: the connection broke, not the protocol.
            return Err(transport(what, "connection closed inside a line"));
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max {
            return Err(GardenError::Protocol {
                what: what.into(),
                message: format!("a line longer than {max} bytes"),
            });
        }
        line.extend_from_slice(&buf[..take]);
        conn.consume(take);
        if done {
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

/// One line of an answer's framing; EOF before it is a transport error.
async fn read_line(conn: &mut Conn, what: &str, at_eof: &str) -> Result<String, GardenError> {
    read_line_bounded(conn, MAX_HEAD_LINE, what)
        .await?
        .ok_or_else(|| transport(what, at_eof))
}

fn too_big(what: &str, n: impl std::fmt::Display) -> GardenError {
    GardenError::Protocol {
        what: what.into(),
        message: format!("an answer of {n} bytes, more than the {MAX_BODY} read"),
    }
}

pub async fn read_head(conn: &mut Conn, what: &str) -> Result<Head, GardenError> {
    let line = read_line(conn, what, "connection closed before an answer").await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| GardenError::Protocol {
            what: what.into(),
            message: format!("bad status line {:?}", line.trim()),
        })?;
    let mut headers = Vec::new();
    let mut size = line.len();
    loop {
        let h = read_line(conn, what, "connection closed in the answer's head").await?;
        size += h.len();
        if size > MAX_HEAD {
            return Err(GardenError::Protocol {
                what: what.into(),
                message: format!("an answer's head longer than {MAX_HEAD} bytes"),
            });
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Head { status, headers })
}

/// Reads a framed body: chunked, Content-Length, or until EOF; at most
/// [`MAX_BODY`] bytes, whatever the peer claims.
pub async fn read_body(conn: &mut Conn, head: &Head, what: &str) -> Result<Vec<u8>, GardenError> {
    let mut body = Vec::new();
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let line = read_line(conn, what, "connection closed inside a chunked body").await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| GardenError::Protocol {
                    what: what.into(),
                    message: format!("bad chunk size {:?}", line.trim()),
                })?;
            if size == 0 {
                // Trailers, up to the blank line (or the end).
                while let Some(t) = read_line_bounded(conn, MAX_HEAD_LINE, what).await? {
                    if t.trim().is_empty() {
                        break;
                    }
                }
                return Ok(body);
            }
            let total = body.len().checked_add(size).filter(|n| *n <= MAX_BODY);
            let Some(total) = total else {
                return Err(too_big(what, format!("{}+{size}", body.len())));
            };
            let start = body.len();
            body.resize(total, 0);
            conn.read_exact(&mut body[start..])
                .await
                .map_err(|e| transport(what, e))?;
            let mut crlf = [0u8; 2];
            conn.read_exact(&mut crlf)
                .await
                .map_err(|e| transport(what, e))?;
        }
    } else if let Some(v) = head.header("content-length") {
        let n: u64 = v.trim().parse().map_err(|_| GardenError::Protocol {
            what: what.into(),
            message: format!("bad Content-Length {v:?}"),
        })?;
        if n > MAX_BODY as u64 {
            return Err(too_big(what, n));
        }
        body.resize(n as usize, 0);
        conn.read_exact(&mut body)
            .await
            .map_err(|e| transport(what, e))?;
    } else {
        read_to_end_bounded(conn, &mut body, what).await?;
    }
    Ok(body)
}

/// Reads to EOF, at most [`MAX_BODY`] bytes.
pub async fn read_to_end_bounded(
    conn: &mut Conn,
    out: &mut Vec<u8>,
    what: &str,
) -> Result<(), GardenError> {
    let mut limited = conn.take(MAX_BODY as u64 + 1);
    limited
        .read_to_end(out)
        .await
        .map_err(|e| transport(what, e))?;
    if out.len() > MAX_BODY {
        return Err(too_big(what, format!("more than {MAX_BODY}")));
    }
    Ok(())
}

/// Percent-encodes a query value or path segment.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
