//! Config fuzzing: mutations of the job-shaped `cpi.json` (as the
//! conformance environment renders it for the job) through the real
//! binary's `ping`: a key removed, a wrong type, a huge string, a new key,
//! mangled bytes. Never a panic, one response, a `CpiError` naming the key.
//! Inputs that once failed live in `tests/regressions/config/`.

use harness::RegistryEndpoint;
use std::path::Path;

#[test]
fn fuzz_config() {
    let bin = Path::new(env!("CARGO_BIN_EXE_cpi-warden"));
    let registry = RegistryEndpoint::unreachable("fuzz-registry-pw");
    let env = fake_garden::start_environment(bin, &registry).unwrap();
    let regressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/config");
    cpi::fuzz::written_config_target(
        "config_warden",
        bin,
        &env.cpi().args,
        &regressions,
        30,
        false,
    );
}
