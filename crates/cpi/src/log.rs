//! Logs go to stderr and, the same lines, into the response's `log` field;
//! every line passes through the secret scrubber on its way to either.

use crate::secret;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// Where a call's log lines go. Cloning shares the buffer.
#[derive(Clone, Default)]
pub struct LogSink {
    buffer: Arc<Mutex<String>>,
    quiet: bool,
}

impl LogSink {
    /// A sink that also writes to stderr.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink that only keeps lines for the `log` field (tests).
    pub fn quiet() -> Self {
        LogSink {
            quiet: true,
            ..Self::default()
        }
    }

    /// Writes a line outside tracing (before a subscriber exists, or from
    /// the panic hook), scrubbed like any other.
    pub fn line(&self, text: &str) {
        self.write_text(&format!("{text}\n"));
    }

    fn write_text(&self, text: &str) {
        let clean = secret::redact(text);
        if !self.quiet {
            let _ = std::io::stderr().lock().write_all(clean.as_bytes());
        }
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(&clean);
    }

    /// Everything logged so far.
    pub fn contents(&self) -> String {
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The tracing subscriber that writes to this sink.
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_target(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish()
    }
}

pub struct SinkWriter(LogSink);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_text(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = SinkWriter;
    fn make_writer(&'a self) -> Self::Writer {
        SinkWriter(self.clone())
    }
}
