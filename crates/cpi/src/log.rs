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
    /// Our own crates log at INFO; HTTP and TLS stacks (hyper, reqwest,
    /// rustls, the AWS SDK) only at WARN, so `log` holds what an operator
    /// reads rather than connection-pool chatter.
    pub fn subscriber(&self) -> Box<dyn tracing::Subscriber + Send + Sync + 'static> {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let filter = tracing_subscriber::filter::Targets::new()
            .with_default(tracing::Level::INFO)
            .with_targets(NOISY.iter().map(|t| (*t, tracing::Level::WARN)));
        if crate::timing::enabled() {
            // Only for `make bench`: the SDK's operation spans are seen by
            // the timing layer, and printed by nobody.
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(self.clone())
                .with_ansi(false)
                .with_target(false)
                .with_filter(filter);
            let ops = crate::timing::SdkOperations.with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("aws_sdk_ec2", tracing::Level::DEBUG)
                    .with_target("aws_sdk_ebs", tracing::Level::DEBUG),
            );
            return Box::new(tracing_subscriber::registry().with(fmt).with(ops));
        }
        Box::new(
            tracing_subscriber::fmt()
                .with_writer(self.clone())
                .with_ansi(false)
                .with_target(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish()
                .with(filter),
        )
    }
}

const NOISY: &[&str] = &[
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "rustls",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "aws_config",
    "aws_sdk_ec2",
    "aws_sdk_ebs",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_our_lines_and_drops_http_chatter() {
        let sink = LogSink::quiet();
        tracing::subscriber::with_default(sink.subscriber(), || {
            tracing::info!("attaching vol-1");
            tracing::info!(target: "hyper_util::client::legacy::pool", "pooling idle connection");
            tracing::warn!(target: "rustls::conn", "certificate expires soon");
            tracing::debug!("noise of our own");
        });
        let log = sink.contents();
        assert!(log.contains("attaching vol-1"), "{log}");
        assert!(log.contains("certificate expires soon"), "{log}");
        assert!(!log.contains("pooling idle connection"), "{log}");
        assert!(!log.contains("noise of our own"), "{log}");
    }
}
