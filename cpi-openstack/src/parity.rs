//! The parity table of README.md checked against the code, so that it
//! cannot drift: every property of the incumbent job spec has a row; a row
//! marked implemented is a field of the config or cloud_properties type
//! (deserialised without being ignored); a refused one is refused by
//! `validate` with a message naming it.

use crate::config::OpenStackOptions;
use crate::disk::DiskProps;
use crate::vm_create::{NetProps, VmProps};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

const README: &str = include_str!("../README.md");

/// The properties of `jobs/openstack_cpi/spec` at `e2856a3c` (facts).
const JOB_SPEC: &[&str] = &[
    "openstack.auth_url",
    "openstack.username",
    "openstack.api_key",
    "openstack.application_credential_id",
    "openstack.application_credential_secret",
    "openstack.tenant",
    "openstack.project",
    "openstack.project_id",
    "openstack.domain",
    "openstack.region",
    "openstack.endpoint_type",
    "openstack.state_timeout",
    "openstack.boot_from_volume",
    "openstack.stemcell_public_visibility",
    "openstack.connection_options",
    "openstack.default_key_name",
    "openstack.default_security_groups",
    "openstack.default_volume_type",
    "openstack.wait_resource_poll_interval",
    "openstack.config_drive",
    "openstack.use_dhcp",
    "openstack.ignore_server_availability_zone",
    "openstack.human_readable_vm_names",
    "openstack.use_nova_networking",
    "openstack.enable_auto_anti_affinity",
    "openstack.user_domain_name",
    "openstack.project_domain_name",
    "registry.host",
    "registry.port",
    "registry.username",
    "registry.password",
    "registry.endpoint",
    "ntp",
    "agent.mbus",
    "nats.user",
    "nats.password",
    "nats.address",
    "nats.port",
    "env.http_proxy",
    "env.https_proxy",
    "env.no_proxy",
];

/// The `cloud_properties` keys the Ruby CPI reads (facts), by where.
const INCUMBENT_CLOUD_PROPERTIES: &[(&str, &str)] = &[
    ("vm", "instance_type"),
    ("vm", "key_name"),
    ("vm", "availability_zone"),
    ("vm", "availability_zones"),
    ("vm", "security_groups"),
    ("vm", "scheduler_hints"),
    ("vm", "boot_from_volume"),
    ("vm", "root_disk.size"),
    ("vm", "loadbalancer_pools"),
    ("vm", "allowed_address_pairs"),
    ("network", "net_id"),
    ("network", "security_groups"),
    ("network", "vrrp_port_check"),
    ("disk", "type"),
    ("stemcell", "image_id"),
    ("stemcell", "name"),
    ("stemcell", "version"),
    ("stemcell", "disk_format"),
    ("stemcell", "container_format"),
];

struct Row {
    keys: Vec<String>,
    place: String,
    status: String,
}

fn rows() -> Vec<Row> {
    let table = README
        .split("## Parity with the incumbent")
        .nth(1)
        .expect("README has the parity section");
    let table = table.split("\n## ").next().unwrap_or(table);
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let keys = cells[0]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            Row {
                keys,
                place: cells[1].to_owned(),
                status: cells[2].to_owned(),
            }
        })
        .collect()
}

fn candidates() -> Vec<Value> {
    vec![
        json!(true),
        json!("x"),
        json!(5),
        json!(["x"]),
        json!({}),
        json!([{"name": "x", "port": 1}]),
    ]
}

/// Whether `key` (dotted for nested) is a field of `T` over `base`.
fn reads<T: DeserializeOwned>(base: Value, key: &str) -> bool {
    candidates().into_iter().any(|cand| {
        let mut v = base.clone();
        match key.split_once('.') {
            Some((outer, inner)) => {
                v[outer] = json!({"size": 1});
                v[outer][inner] = cand;
            }
            None => v[key] = cand,
        }
        let mut ignored = Vec::new();
        let ok = serde_ignored::deserialize(v, |p| ignored.push(p.to_string()))
            .map(|_: T| ())
            .is_ok();
        ok && ignored.is_empty()
    })
}

fn openstack(key: &str) -> Option<OpenStackOptions> {
    let mut v = json!({"auth_url": "http://k/v3", "username": "u", "api_key": "p", "project": "b"});
    v[key] = json!(true);
    serde_json::from_value(v).ok()
}

#[test]
fn every_incumbent_key_has_a_row() {
    let rows = rows();
    let listed = |k: &str| rows.iter().any(|r| r.keys.iter().any(|x| x == k));
    for k in JOB_SPEC {
        assert!(
            listed(k),
            "job property {k} is missing from the parity table"
        );
    }
    for (place, k) in INCUMBENT_CLOUD_PROPERTIES {
        assert!(
            rows.iter()
                .any(|r| r.place == *place && r.keys.iter().any(|x| x == k)),
            "{place} cloud_properties key {k} is missing from the parity table"
        );
    }
}

#[test]
fn the_table_matches_the_types() {
    let rows = rows();
    assert!(rows.len() > 40, "{} rows", rows.len());
    for r in &rows {
        assert!(
            r.status == "implemented" || r.status == "refused",
            "{:?}: status '{}'",
            r.keys,
            r.status
        );
        for key in &r.keys {
            let base = Value::Object(Map::new());
            let ok = match (r.place.as_str(), key.strip_prefix("openstack.")) {
                ("job" | "ours", Some(k)) => {
                    let base = json!({"auth_url": "http://k/v3"});
                    let field = reads::<OpenStackOptions>(base, k);
                    if r.status == "refused" {
                        let refused = openstack(k)
                            .and_then(|o| o.validate().err())
                            .is_some_and(|e| e.message().contains(key.as_str()));
                        field && refused
                    } else {
                        field
                    }
                }
                ("vm", None) => reads::<VmProps>(json!({"instance_type": "m"}), key),
                ("network", None) => reads::<NetProps>(base, key),
                ("disk", None) => reads::<DiskProps>(base, key),
                ("stemcell", None) => crate::stemcell::reads(&key.replace('*', "x")),
                // Rendered by the job into another block, or the wrapper's
                // environment: documented, checked by the tests named.
                (p, None) if p.contains('→') => true,
                (p, k) => panic!("{key}: unknown place '{p}' ({k:?})"),
            };
            assert!(
                ok,
                "{key} ({}): marked {} but the code disagrees",
                r.place, r.status
            );
        }
    }
}
