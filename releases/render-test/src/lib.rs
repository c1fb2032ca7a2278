//! The releases under test: render a job with `releases/render.rb` (Ruby's
//! ERB, BOSH's template context) from a manifest, lay the result out as a
//! VM would (`jobs/<job>/...`, `packages/<pkg>/bin/cpi`), and run the
//! rendered `bin/cpi` as the director does.

use harness::cpi::{Cpi, Reply};
use harness::CpiCommand;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One release's job: where it lives and which binary its package carries.
pub struct Job {
    pub release: &'static str,
    pub job: &'static str,
    pub package: &'static str,
    pub binary: &'static str,
}

pub const AWS: Job = Job {
    release: "bosh-aws-cpi",
    job: "aws_cpi",
    package: "bosh_aws_cpi",
    binary: "cpi-aws",
};
pub const OPENSTACK: Job = Job {
    release: "bosh-openstack-cpi",
    job: "openstack_cpi",
    package: "bosh_openstack_cpi",
    binary: "cpi-openstack",
};
pub const SOFTLAYER: Job = Job {
    release: "bosh-softlayer-cpi",
    job: "softlayer_cpi",
    package: "bosh_softlayer_cpi",
    binary: "cpi-softlayer",
};
pub const WARDEN: Job = Job {
    release: "bosh-warden-cpi",
    job: "warden_cpi",
    package: "warden_cpi",
    binary: "cpi-warden",
};
pub const JOBS: [&Job; 4] = [&AWS, &OPENSTACK, &SOFTLAYER, &WARDEN];

/// The repository root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Job {
    pub fn release_dir(&self) -> PathBuf {
        workspace().join("releases").join(self.release)
    }

    pub fn job_dir(&self) -> PathBuf {
        self.release_dir().join("jobs").join(self.job)
    }

    pub fn spec(&self) -> serde_yaml_ng::Value {
        read_yaml(&self.job_dir().join("spec"))
    }
}

pub fn read_yaml(path: &Path) -> serde_yaml_ng::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The workspace's built binaries: this test runs from target/debug/deps.
pub fn built(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build -p {name}` (or `make test`, which builds the workspace first)",
        path.display()
    );
    path
}

/// Debian's ruby, the renderer. Missing is a failure, never a skip.
pub fn ruby() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("ruby"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("ruby is not installed: the release templates are rendered with Ruby's ERB; run `make tools` (apt-get install ruby)")
    })
}

/// A job rendered and laid out as on a VM, under a temp dir.
pub struct Rendered {
    pub root: tempfile::TempDir,
    pub job_dir: PathBuf,
    /// What the renderer wrote on stderr (undeclared properties).
    pub warnings: String,
    binary: &'static str,
}

/// Renders `job` for `manifest` (`{"properties": {...}, "spec": {...}}`);
/// the renderer's message when it refuses (a missing property...).
pub fn render(job: &Job, manifest: &Value) -> Result<Rendered, String> {
    let root = tempfile::Builder::new()
        .prefix("release-render-")
        .tempdir()
        .expect("temp dir");
    let manifest_path = root.path().join("manifest.yml");
    // JSON is YAML: the renderer reads it as it reads a manifest.
    std::fs::write(&manifest_path, manifest.to_string()).expect("writing the manifest");
    let job_dir = root.path().join("jobs").join(job.job);
    let out = Command::new(ruby())
        .arg(workspace().join("releases/render.rb"))
        .arg(job.job_dir())
        .arg(&manifest_path)
        .arg(&job_dir)
        .output()
        .expect("running ruby");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    let bin = root.path().join("packages").join(job.package).join("bin");
    std::fs::create_dir_all(&bin).expect("packages dir");
    std::os::unix::fs::symlink(built(job.binary), bin.join("cpi")).expect("linking the binary");
    Ok(Rendered {
        root,
        job_dir,
        warnings: stderr,
        binary: job.binary,
    })
}

impl Rendered {
    pub fn file(&self, rel: &str) -> String {
        let path = self.job_dir.join(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading rendered {}: {e}", path.display()))
    }

    /// The rendered `config/cpi.json`, parsed (it must be JSON).
    pub fn config(&self) -> Value {
        let text = self.file("config/cpi.json");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("rendered cpi.json is not JSON: {e}\n{text}"))
    }

    /// The rendered `bin/cpi`, run as the director runs it (BOSH_JOBS_DIR
    /// and BOSH_PACKAGES_DIR point at this layout instead of /var/vcap).
    pub fn command(&self) -> CpiCommand {
        CpiCommand {
            binary: self.job_dir.join("bin/cpi"),
            args: vec![],
            env: vec![
                (
                    "BOSH_JOBS_DIR".into(),
                    self.root.path().join("jobs").display().to_string(),
                ),
                (
                    "BOSH_PACKAGES_DIR".into(),
                    self.root.path().join("packages").display().to_string(),
                ),
            ],
        }
    }

    pub fn cpi(&self) -> Cpi {
        Cpi::new(self.command(), Duration::from_secs(120)).expect("cpi")
    }

    pub fn binary(&self) -> &str {
        self.binary
    }
}

/// The call's result, or a panic with the CPI's error and log.
pub fn ok(cpi: &Cpi, method: &str, args: Vec<Value>) -> Value {
    match cpi.call(method, args) {
        Ok(Reply {
            error: None,
            result,
            ..
        }) => result,
        Ok(Reply {
            error: Some(e),
            log,
            stderr,
            ..
        }) => panic!(
            "{method}: {} {}\nlog: {log}\nstderr: {stderr}",
            e.kind, e.message
        ),
        Err(e) => panic!("{method}: {e:?}"),
    }
}

/// The call's CPI error message, or a panic if it succeeded.
pub fn err(cpi: &Cpi, method: &str, args: Vec<Value>) -> String {
    match cpi.call(method, args) {
        Ok(Reply { error: Some(e), .. }) => format!("{}: {}", e.kind, e.message),
        Ok(r) => panic!(
            "{method} succeeded ({}) where an error was expected",
            r.result
        ),
        Err(e) => panic!("{method}: {e:?}"),
    }
}

/// Sets `value` at the dotted `path` of a manifest's properties.
pub fn set(manifest: &mut Value, path: &str, value: Value) {
    let mut node = &mut manifest["properties"];
    for key in path.split('.') {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        node = &mut node[key];
    }
    *node = value;
}

/// Removes the dotted `path` from a manifest's properties.
pub fn unset(manifest: &mut Value, path: &str) {
    let (parents, last) = path.rsplit_once('.').unwrap_or(("", path));
    let mut node = &mut manifest["properties"];
    for key in parents.split('.').filter(|k| !k.is_empty()) {
        node = &mut node[key];
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
}

/// The first certificate of the system's CA bundle: a real PEM for the
/// `ca_cert` properties (the CPIs parse it).
pub fn some_ca_pem() -> String {
    let bundle = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")
        .expect("/etc/ssl/certs/ca-certificates.crt (ca-certificates)");
    let end = "-----END CERTIFICATE-----";
    let stop = bundle.find(end).expect("a certificate in the bundle") + end.len();
    let start = bundle[..stop]
        .rfind("-----BEGIN CERTIFICATE-----")
        .expect("BEGIN");
    format!("{}\n", &bundle[start..stop])
}
