//! The SoftLayer REST client: `{endpoint}/{Service}[/{id}][/{method}].json`,
//! basic auth with the username and API key, object masks and filters, the
//! API's error bodies, and retries of transient failures within the
//! configured bound.

use crate::config::Waits;
use crate::error::SlError;
use cpi::wait::{self, Verdict};
use cpi::{Error, Secret};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::cell::RefCell;

pub struct Client {
    http: cpi::http::Clients,
    endpoint: String,
    username: String,
    api_key: Secret,
    waits: Waits,
}

/// One API call, built up and then sent with [`Client::send`].
#[derive(Clone, Debug)]
pub struct Call {
    service: &'static str,
    id: Option<u64>,
    method: &'static str,
    mask: Option<String>,
    filter: Option<Value>,
    params: Option<Vec<Value>>,
    verb: Method,
    /// Whether sending it twice does no harm (then dropped connections and
    /// timeouts are retried too, not only failures to connect).
    idempotent: bool,
}

impl Call {
    /// `getObject` and other calls without parameters: GET.
    pub fn get(service: &'static str, id: Option<u64>, method: &'static str) -> Call {
        Call {
            service,
            id,
            method,
            mask: None,
            filter: None,
            params: None,
            verb: Method::GET,
            idempotent: true,
        }
    }

    /// A call with parameters: POST, the way the REST API takes them.
    pub fn post(
        service: &'static str,
        id: Option<u64>,
        method: &'static str,
        params: Vec<Value>,
    ) -> Call {
        Call {
            params: Some(params),
            verb: Method::POST,
            idempotent: false,
            ..Call::get(service, id, method)
        }
    }

    /// `deleteObject`: DELETE on the object.
    pub fn delete(service: &'static str, id: u64) -> Call {
        Call {
            verb: Method::DELETE,
            ..Call::get(service, Some(id), "deleteObject")
        }
    }

    /// `editObject`: PUT of the changed properties.
    pub fn edit(service: &'static str, id: u64, object: Value) -> Call {
        Call {
            verb: Method::PUT,
            params: Some(vec![object]),
            ..Call::get(service, Some(id), "editObject")
        }
    }

    pub fn mask(mut self, mask: &str) -> Call {
        self.mask = Some(mask.to_owned());
        self
    }

    pub fn filter(mut self, filter: Value) -> Call {
        self.filter = Some(filter);
        self
    }

    pub fn idempotent(mut self) -> Call {
        self.idempotent = true;
        self
    }

    /// `Service::method(id)`, for messages.
    pub fn name(&self) -> String {
        match self.id {
            Some(id) => format!("{}::{}({id})", self.service, self.method),
            None => format!("{}::{}", self.service, self.method),
        }
    }

    fn path(&self) -> String {
        let mut p = self.service.to_owned();
        if let Some(id) = self.id {
            p.push_str(&format!("/{id}"));
        }
        if !matches!(
            self.method,
            "getObject" | "createObject" | "editObject" | "deleteObject"
        ) {
            p.push('/');
            p.push_str(self.method);
        }
        p.push_str(".json");
        p
    }
}

impl Client {
    pub fn new(
        endpoint: &str,
        username: &str,
        api_key: &Secret,
        waits: Waits,
    ) -> Result<Client, Error> {
        let request = waits.request;
        let http = cpi::http::Clients::new("the SoftLayer HTTP client", move |b| {
            b.timeout(request)
                .connect_timeout(request.min(std::time::Duration::from_secs(30)))
                .user_agent(concat!("cpi-softlayer/", env!("CARGO_PKG_VERSION")))
        });
        Ok(Client {
            http,
            endpoint: endpoint.to_owned(),
            username: username.to_owned(),
            api_key: api_key.clone(),
            waits,
        })
    }

    /// Sends `call`, retrying transient failures, and decodes the answer.
    pub async fn send<T: DeserializeOwned>(&self, call: Call) -> Result<T, SlError> {
        let value = self.send_value(&call).await?;
        serde_json::from_value(value).map_err(|e| SlError::Decode {
            call: call.name(),
            message: e.to_string(),
        })
    }

    /// Sends `call` and ignores what it answers (`true`, mostly).
    pub async fn run(&self, call: Call) -> Result<(), SlError> {
        self.send_value(&call).await.map(|_| ())
    }

    async fn send_value(&self, call: &Call) -> Result<Value, SlError> {
        // The last failure, whole, so that callers can branch on its code.
        let last: RefCell<Option<SlError>> = RefCell::new(None);
        let result = wait::retry(
            call.name(),
            self.waits.api(),
            |_: &Error| match last.borrow().as_ref() {
                Some(e) if e.is_throttled() => Verdict::Throttled,
                Some(e) if e.is_transient() && (call.idempotent || e.never_sent()) => {
                    Verdict::Retry
                }
                _ => Verdict::Fail,
            },
            || async {
                self.once(call).await.map_err(|e| {
                    let err = Error::cloud(e.to_string());
                    *last.borrow_mut() = Some(e);
                    err
                })
            },
        )
        .await;
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(last.take().unwrap_or_else(|| SlError::Transport {
                call: call.name(),
                message: e.message().to_owned(),
                connect: false,
            })),
        }
    }

    async fn once(&self, call: &Call) -> Result<Value, SlError> {
        let url = format!("{}/{}", self.endpoint, call.path());
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(mask) = &call.mask {
            query.push(("objectMask", format!("mask[{mask}]")));
        }
        if let Some(filter) = &call.filter {
            query.push(("objectFilter", filter.to_string()));
        }
        let mut req = self
            .http
            .request(call.verb.clone(), &url)
            .map_err(|e| SlError::Setup {
                call: call.name(),
                message: e.message().to_owned(),
            })?
            .basic_auth(&self.username, Some(self.api_key.expose()))
            .query(&query);
        if let Some(params) = &call.params {
            req = req.json(&json!({ "parameters": params }));
        }
        tracing::debug!("SoftLayer {} {}", call.verb, call.name());
        let resp = cpi::timing::request(&call.name(), req.send())
            .await
            .map_err(|e| SlError::Transport {
                call: call.name(),
                message: describe(&e),
                connect: e.is_connect(),
            })?;
        let status = resp.status();
        let bytes = read_capped(resp, MAX_ANSWER).await.map_err(|e| match e {
            Capped::Read(e) => SlError::Transport {
                call: call.name(),
                message: describe(&e),
                connect: false,
            },
            Capped::TooBig => SlError::Decode {
                call: call.name(),
                message: format!("the answer is larger than {} MiB", MAX_ANSWER >> 20),
            },
        })?;
        decode_answer(&call.name(), status.as_u16(), &bytes)
    }
}

/// The most this client reads of one answer: SoftLayer's largest lists (a
/// package's prices) are a few MiB.
pub const MAX_ANSWER: usize = 32 << 20;

enum Capped {
    Read(reqwest::Error),
    TooBig,
}

async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, Capped> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(Capped::TooBig);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Read)? {
        if out.len() + chunk.len() > cap {
            return Err(Capped::TooBig);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An answer as a value or the error it carries: SoftLayer's error body
/// (`{"error", "code"}`) on a non-2xx status, else the status and the
/// start of the body. Never panics, whatever the bytes.
pub fn decode_answer(call: &str, status: u16, bytes: &[u8]) -> Result<Value, SlError> {
    if (200..300).contains(&status) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        return serde_json::from_slice(bytes).map_err(|e| SlError::Decode {
            call: call.to_owned(),
            message: e.to_string(),
        });
    }
    #[derive(serde::Deserialize)]
    struct Body {
        error: String,
        #[serde(default)]
        code: String,
    }
    match serde_json::from_slice::<Body>(bytes) {
        Ok(b) => Err(SlError::Api {
            call: call.to_owned(),
            status,
            code: b.code,
            message: b.error.chars().take(2000).collect(),
        }),
        Err(_) => Err(SlError::Http {
            call: call.to_owned(),
            status,
            body: String::from_utf8_lossy(&bytes[..bytes.len().min(800)])
                .chars()
                .take(200)
                .collect(),
        }),
    }
}

/// A transport error without its URL (the endpoint is in the config already).
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.without_url_ref();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(u) = self.url() {
            s = s
                .replace(&format!(" ({})", u.as_str()), "")
                .replace(u.as_str(), "SoftLayer");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_rest_conventions() {
        assert_eq!(
            Call::get("SoftLayer_Virtual_Guest", Some(1), "getObject").path(),
            "SoftLayer_Virtual_Guest/1.json"
        );
        assert_eq!(
            Call::post("SoftLayer_Virtual_Guest", None, "createObject", vec![]).path(),
            "SoftLayer_Virtual_Guest.json"
        );
        assert_eq!(
            Call::delete("SoftLayer_Virtual_Guest", 1).path(),
            "SoftLayer_Virtual_Guest/1.json"
        );
        assert_eq!(
            Call::get("SoftLayer_Account", None, "getIscsiNetworkStorage").path(),
            "SoftLayer_Account/getIscsiNetworkStorage.json"
        );
    }
}
