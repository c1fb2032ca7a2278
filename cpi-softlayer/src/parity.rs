//! The README's parity tables checked against the code, so that they
//! cannot drift: every key a props type reads is in its table and every
//! table key is read (refused keys are read too, to be refused by name);
//! every property of the Go CPI's job spec is in the job table, each
//! `softlayer.*` one a field of the config.

const README: &str = include_str!("../README.md");

/// The properties of `jobs/softlayer_cpi/spec` in bosh-softlayer-cpi-release
/// (2ac3827f).
const JOB_SPEC: &[&str] = &[
    "softlayer.username",
    "softlayer.api_key",
    "softlayer.api_endpoint",
    "softlayer.disable_os_reload",
    "softlayer.ssh_public_key",
    "softlayer.ssh_public_key_fingerprint",
    "softlayer.trace",
    "softlayer.enable_vps",
    "softlayer.vps_host",
    "softlayer.vps_port",
    "softlayer.vps_use_ssl",
    "softlayer.swift_username",
    "softlayer.swift_endpoint",
    "registry.username",
    "registry.password",
    "registry.address",
    "registry.host",
    "registry.port",
    "registry.endpoint",
    "ntp",
    "blobstore.provider",
    "blobstore.bucket_name",
    "blobstore.access_key_id",
    "blobstore.secret_access_key",
    "blobstore.use_ssl",
    "blobstore.s3_port",
    "blobstore.host",
    "blobstore.s3_force_path_style",
    "blobstore.path",
    "blobstore.address",
    "blobstore.port",
    "blobstore.agent.user",
    "blobstore.agent.password",
    "agent.vcappassword",
    "agent.blobstore.secret_access_key",
    "agent.mbus",
    "agent.nats.address",
    "agent.blobstore.address",
    "agent.blobstore.access_key_id",
    "nats.user",
    "nats.password",
    "nats.address",
    "nats.port",
    "env.http_proxy",
    "env.https_proxy",
    "env.no_proxy",
];

/// (key, status) of each row of the table between the section's markers.
fn rows(section: &str) -> Vec<(String, String)> {
    let start = format!("<!-- parity:{section} -->");
    let end = format!("<!-- /parity:{section} -->");
    let from = README
        .find(&start)
        .unwrap_or_else(|| panic!("README has no {start}"));
    let to = README[from..]
        .find(&end)
        .unwrap_or_else(|| panic!("README has no {end}"))
        + from;
    README[from..to]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`').to_owned();
            let status = cells
                .iter()
                .find(|c| c.starts_with("implemented") || c.starts_with("refused"))
                .unwrap_or_else(|| panic!("row {key}: no 'implemented' or 'refused' status"))
                .to_string();
            (key, status)
        })
        .collect()
}

fn same_keys(section: &str, fields: &[&str]) {
    let table: Vec<String> = rows(section).into_iter().map(|(k, _)| k).collect();
    for f in fields {
        assert!(
            table.iter().any(|k| k == f),
            "{section}: `{f}` is read but not in the README table"
        );
    }
    for k in &table {
        assert!(
            fields.contains(&k.as_str()),
            "{section}: `{k}` is in the README table but not read"
        );
    }
}

#[test]
fn cloud_properties_tables_match_the_props_types() {
    same_keys("vm", crate::vm_create::fields());
    same_keys("network", crate::network::fields());
    same_keys("disk", crate::disk::fields());
}

#[test]
fn the_job_table_lists_the_whole_spec_and_the_config_reads_it() {
    let job: Vec<String> = rows("job").into_iter().map(|(k, _)| k).collect();
    for p in JOB_SPEC {
        assert!(
            job.iter().any(|k| k == p),
            "job spec property `{p}` is not in the README table"
        );
    }
    let fields = crate::props::fields_of::<crate::config::SoftLayerConfig>();
    let new: Vec<String> = rows("config-new").into_iter().map(|(k, _)| k).collect();
    for k in job.iter().chain(&new) {
        if let Some(f) = k.strip_prefix("softlayer.") {
            assert!(
                fields.contains(&f),
                "`{k}` is in the README but SoftLayerConfig does not read it"
            );
        }
    }
    for f in fields
        .iter()
        .filter(|f| f.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
    {
        let key = format!("softlayer.{f}");
        assert!(
            job.contains(&key) || new.contains(&key),
            "SoftLayerConfig reads `{key}`, which no README table lists"
        );
    }
}
