//! What every cloud's tests do: start its environment, render, call.

use harness::forward_proxy::ForwardProxy;
use harness::registry::RegistryServer;
use harness::Environment;
use release_render::{err, ok, render, set, Job, Rendered};
use serde_json::{json, Value};

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

/// With `env.http_proxy` at `proxy`, the job renders and its CPI's calls
/// go through the proxy: the rendering, and how many requests it carried.
pub fn through_proxy(
    job: &Job,
    manifest: &mut Value,
    proxy: &ForwardProxy,
    absent_vm: &str,
) -> (Rendered, usize) {
    set(manifest, "env.http_proxy", json!(proxy.url()));
    let (rendered, _) = accepted(job, manifest, absent_vm, "through the proxy");
    let carried = proxy.carried().len();
    assert!(carried > 0, "no request went through env.http_proxy");
    (rendered, carried)
}

/// With `env.no_proxy` naming the cloud's host as well, the proxy carries
/// nothing more.
pub fn bypassing_proxy(job: &Job, manifest: &mut Value, proxy: &ForwardProxy, absent_vm: &str) {
    let before = proxy.carried().len();
    set(manifest, "env.no_proxy", json!("127.0.0.1"));
    accepted(job, manifest, absent_vm, "no_proxy bypasses it");
    assert_eq!(
        proxy.carried().len(),
        before,
        "env.no_proxy was not honoured"
    );
}
