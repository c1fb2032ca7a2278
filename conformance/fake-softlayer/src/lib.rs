//! Placeholder: the environment for this cloud is being written.

use harness::{Environment, RegistryEndpoint};
use std::path::Path;

/// Starts this cloud's fake (or local server) and writes a CPI config for
/// `cpi_binary` pointing at it and at the harness's `registry`.
pub fn start_environment(
    cpi_binary: &Path,
    registry: &RegistryEndpoint,
) -> Result<Box<dyn Environment>, String> {
    let _ = (cpi_binary, registry);
    Err("not written yet".into())
}
