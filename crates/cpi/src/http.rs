//! HTTP clients whose TLS is set up only when a request goes to an https
//! URL. Building a TLS client loads the system's trust store (some 290 PEM
//! files, ~1.8 ms in a release build): more than a whole call against a
//! local http endpoint, and not needed for one.
//!
//! [`Clients`] holds one client per scheme, each built on first use from
//! the same settings: `http://` URLs go to a client without trust roots
//! (it never verifies a certificate: it never follows a redirect to https),
//! `https://` URLs to one with the system's roots plus any extra CA the
//! caller configured. With no system CA store an http endpoint still works,
//! and an https one fails naming the missing store.

use crate::{Error, Result};
use std::sync::OnceLock;

type Configure = Box<dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync>;

pub struct Clients {
    /// What the client is for, in errors: "the registry client".
    what: &'static str,
    configure: Configure,
    plain: OnceLock<reqwest::Client>,
    tls: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").field("what", &self.what).finish()
    }
}

impl Clients {
    /// `configure` sets what both clients share (timeouts, user agent,
    /// extra CA certificates, verification); it runs at most once per scheme.
    pub fn new(
        what: &'static str,
        configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Clients {
        Clients {
            what,
            configure: Box::new(configure),
            plain: OnceLock::new(),
            tls: OnceLock::new(),
        }
    }

    /// The client for `url`: with TLS roots for https, without for anything else.
    pub fn for_url(&self, url: &str) -> Result<&reqwest::Client> {
        if is_https(url) {
            self.tls()
        } else {
            self.plain()
        }
    }

    /// A request to `url` on the client for its scheme.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder> {
        Ok(self.for_url(url)?.request(method, url))
    }

    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder> {
        self.request(reqwest::Method::GET, url)
    }

    pub fn put(&self, url: &str) -> Result<reqwest::RequestBuilder> {
        self.request(reqwest::Method::PUT, url)
    }

    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder> {
        self.request(reqwest::Method::POST, url)
    }

    pub fn delete(&self, url: &str) -> Result<reqwest::RequestBuilder> {
        self.request(reqwest::Method::DELETE, url)
    }

    /// Whether the TLS client has been built (for tests of this module).
    pub fn tls_built(&self) -> bool {
        self.tls.get().is_some()
    }

    fn plain(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.plain.get() {
            return Ok(c);
        }
        // No roots: nothing loaded. A redirect to https would need them, so
        // it is an error naming the URL to configure instead.
        let builder = (self.configure)(reqwest::Client::builder())
            .tls_certs_only(Vec::new())
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                if attempt.url().scheme() == "https" {
                    let to = without_credentials(attempt.url());
                    attempt.error(format!(
                        "an http endpoint redirected to {to}: configure the https URL"
                    ))
                } else if attempt.previous().len() >= 10 {
                    attempt.error("too many redirects")
                } else {
                    attempt.follow()
                }
            }));
        let client = builder
            .build()
            .map_err(|e| Error::cpi(format!("building {}: {}", self.what, chain(&e))))?;
        Ok(self.plain.get_or_init(|| client))
    }

    fn tls(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.tls.get() {
            return Ok(c);
        }
        let client = (self.configure)(reqwest::Client::builder())
            .build()
            .map_err(|e| Error::cpi(tls_error(self.what, &e)))?;
        Ok(self.tls.get_or_init(|| client))
    }
}

/// Checks that `certs` can be trust roots (parsing them alone does not),
/// without loading the system's store: so that a bad CA file is a config
/// error at start, not at the first https request.
pub fn check_roots(certs: &[reqwest::Certificate]) -> std::result::Result<(), String> {
    if certs.is_empty() {
        return Ok(());
    }
    reqwest::Client::builder()
        .tls_certs_only(certs.to_vec())
        .build()
        .map(drop)
        .map_err(|e| chain(&e))
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

fn without_credentials(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// The error and its causes: reqwest's own message is only "builder error".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn tls_error(what: &str, e: &reqwest::Error) -> String {
    let causes = chain(e);
    if causes.contains("No CA certificates") {
        format!(
            "building {what} for an https endpoint: the system has no CA certificates \
             (none found in the system trust store, or in SSL_CERT_FILE / SSL_CERT_DIR when set): \
             install the system's CA certificates or configure the CA that signed the endpoint's \
             certificate ({causes})"
        )
    } else {
        format!("building {what} for an https endpoint: {causes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_their_client_and_http_builds_no_tls() {
        let c = Clients::new("the test client", |b| b);
        c.for_url("http://127.0.0.1:1/x").unwrap();
        assert!(!c.tls_built());
        c.for_url("HTTPS://example.com/").unwrap();
        assert!(c.tls_built());
    }
}
