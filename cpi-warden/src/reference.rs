//! The reference of everything cpi-warden reads: the `cpi.json` keys, the
//! incumbent job's properties and where each goes, and the
//! `cloud_properties` keys. README.md's tables are rendered from these
//! (`markdown()`), and tests check them against the config types, the
//! cloud_properties reader and the incumbent's job spec, so none can drift.

use cpi::reference::{key, Reference};
pub use cpi::reference::{JobProperty, Key};

/// `cpi.json`, as the `warden_cpi` job renders it (plus two keys of older
/// releases that had a registry).
pub const CONFIG: &[Key] = &[
    key("start_containers_with_systemd", "bool", "false", "Containers start with /sbin/init (Noble stemcells): `/sys/fs/cgroup` is bind-mounted in and the CPI only runs `umount /etc/hosts`, leaving the agent to systemd.", "implemented (tests/parity.rs)"),
    key("Warden.ConnectNetwork", "string", "required", "`tcp` or `unix`.", "implemented; anything else refused by name"),
    key("Warden.ConnectAddress", "string", "required", "`127.0.0.1:7777` or a socket path.", "implemented"),
    key("Actions.StemcellsDir", "absolute path", "required", "Where stemcells are unpacked, one entry per stemcell cid.", "implemented"),
    key("Actions.ExpandStemcellTarball", "bool", "true", "true: the image is unpacked into a directory (the container's rootfs); false: only gunzipped to a tarball file, for GrootFS.", "implemented (tests/parity.rs); the Go CPI's zero value when the key is absent is false, the job always renders it"),
    key("Actions.DisksDir", "absolute path", "required", "Persistent disks: one ext4-formatted file per disk cid (and `.CID.metadata.json` beside it); `.templates/` holds one formatted image per disk size, the format cache.", "implemented"),
    key("Actions.HostEphemeralBindMountsDir", "absolute path", "required", "Per VM `DIR/<vm>`, bind-mounted into the container at GuestEphemeralBindMountPath.", "implemented (tests/parity.rs)"),
    key("Actions.HostPersistentBindMountsDir", "absolute path", "required", "Per VM `DIR/<vm>` (a shared mount), bind-mounted at GuestPersistentBindMountsDir; disks are loop-mounted at `DIR/<vm>/<disk>`.", "implemented (tests/parity.rs)"),
    key("Actions.GuestEphemeralBindMountPath", "absolute path", "required", "The ephemeral disk inside the VM (`/var/vcap/data`).", "implemented"),
    key("Actions.GuestPersistentBindMountsDir", "absolute path", "required", "Where persistent disks appear inside the VM (`/warden-cpi-dev/<disk>`, the attach hint).", "implemented (tests/parity.rs)"),
    key("Actions.Agent.Mbus", "string (secret)", "required", "The agents' message bus URL, into every VM's settings.", "implemented; missing or empty refused by name (as the Go CPI)"),
    key("Actions.Agent.NTP", "list of strings", "[]", "NTP servers, into the settings.", "implemented"),
    key("Actions.Agent.Blobstore.Provider", "string", "\"\" (job: dav)", "The agents' blobstore provider, into the settings (`Type` is read too).", "implemented (the Go CPI renders it but no longer passes it on)"),
    key("Actions.Agent.Blobstore.Options", "object", "{}", "The blobstore options, into the settings; secrets in them are never logged.", "implemented"),
    key("Actions.AgentEnvService", "string", "file", "`file` (settings in `/var/vcap/bosh/warden-cpi-agent-env.json`) or `registry` (stemcell API v1 VMs: settings in the registry, a pointer in `warden-cpi-user-data.json`).", "extension (older releases of the Go CPI had it)"),
    key("Actions.Registry", "object {Host, Port, Username, Password[, Protocol, Endpoint]}", "none", "The registry, when AgentEnvService is `registry`.", "extension; required (by name) with `registry`"),
];

/// cloudfoundry/bosh-warden-cpi-release `jobs/warden_cpi/spec` at
/// 75aa1f6007d52d55471b6e4c70dddd2e669309b4, every property in its order.
pub const INCUMBENT_COMMIT: &str = "75aa1f6007d52d55471b6e4c70dddd2e669309b4";
pub const JOB: &[JobProperty] = &[
    JobProperty { property: "warden_cpi.host_ip", default: "none", goes_to: "the job's start script (`ifconfig lo:1`), not cpi.json: the binary never sees it" },
    JobProperty { property: "warden_cpi.loopback_range", default: "none", goes_to: "the job's start script (makes `/dev/loopN` nodes), not cpi.json; the CPI takes free loop devices from `/dev/loop-control` (LOOP_CONFIGURE, then mount(2); `mount -o loop` when that fails)" },
    JobProperty { property: "warden_cpi.no_masq_cidrs", default: "[\"10.244.0.0/16\"]", goes_to: "the job's start script (iptables), not cpi.json" },
    JobProperty { property: "warden_cpi.warden.connect_network", default: "none", goes_to: "`Warden.ConnectNetwork`" },
    JobProperty { property: "warden_cpi.warden.connect_address", default: "none", goes_to: "`Warden.ConnectAddress`" },
    JobProperty { property: "warden_cpi.agent.mbus", default: "none", goes_to: "`Actions.Agent.Mbus`" },
    JobProperty { property: "warden_cpi.agent.ntp", default: "[]", goes_to: "`Actions.Agent.NTP`" },
    JobProperty { property: "warden_cpi.agent.blobstore.provider", default: "dav", goes_to: "`Actions.Agent.Blobstore.Provider`" },
    JobProperty { property: "warden_cpi.agent.blobstore.options", default: "{}", goes_to: "`Actions.Agent.Blobstore.Options`" },
    JobProperty { property: "warden_cpi.actions.stemcells_dir", default: "/var/vcap/store/warden_cpi/stemcells", goes_to: "`Actions.StemcellsDir`" },
    JobProperty { property: "warden_cpi.actions.expand_stemcell_tarball", default: "true", goes_to: "`Actions.ExpandStemcellTarball`" },
    JobProperty { property: "warden_cpi.actions.disks_dir", default: "/var/vcap/store/warden_cpi/disks", goes_to: "`Actions.DisksDir`" },
    JobProperty { property: "warden_cpi.actions.host_ephemeral_bind_mounts_dir", default: "/var/vcap/store/warden_cpi/ephemeral_bind_mounts_dir", goes_to: "`Actions.HostEphemeralBindMountsDir`" },
    JobProperty { property: "warden_cpi.actions.host_persistent_bind_mounts_dir", default: "/var/vcap/store/warden_cpi/persistent_bind_mounts_dir", goes_to: "`Actions.HostPersistentBindMountsDir`" },
    JobProperty { property: "warden_cpi.actions.guest_ephemeral_bind_mount_path", default: "/var/vcap/data", goes_to: "`Actions.GuestEphemeralBindMountPath`" },
    JobProperty { property: "warden_cpi.actions.guest_persistent_bind_mounts_dir", default: "/warden-cpi-dev", goes_to: "`Actions.GuestPersistentBindMountsDir`" },
    JobProperty { property: "warden_cpi.start_containers_with_systemd", default: "false", goes_to: "`start_containers_with_systemd`" },
];

/// VM `cloud_properties` (create_vm). The Go CPI reads `ports` only.
pub const VM_CLOUD_PROPERTIES: &[Key] = &[
    key("ports", "list", "[]", "Host ports forwarded into the container with Garden's net-in: each `80` or `{host, container, protocol}`.", "implemented (tests/parity.rs)"),
    key("ports[].host", "port or range (`80`, `\"80\"`, `\"1000-2000\"`, `\"1000:2000\"`)", "required", "The host port(s); at most 1024 ports per VM.", "implemented"),
    key("ports[].container", "port or range", "= host", "The container port(s); a range must be forwarded to the same range.", "implemented"),
    key("ports[].protocol", "string", "tcp", "`tcp`; `udp` answers NotSupported naming the key (net-in forwards tcp only; the Go CPI writes iptables rules).", "tcp implemented, udp refused by name"),
    key("privileged", "bool", "true", "A privileged container (the Go CPI always makes one); false for an unprivileged one.", "extension (tests/parity.rs)"),
    key("(any other key)", "-", "-", "Warned about on stderr (`cloud_properties.KEY: not used`); the Go CPI ignores it too.", "warning"),
];

/// Disk, network and stemcell `cloud_properties`: none read, by either CPI.
pub const OTHER_CLOUD_PROPERTIES: &[Key] = &[
    key("create_disk cloud_properties", "-", "-", "Every key warned about; the size comes from create_disk's size (MiB), `resize_disk` grows a detached disk.", "warning (the Go CPI ignores them)"),
    key("network cloud_properties", "-", "-", "Not read: the default network's `ip`/`netmask` (manual) or nothing (dynamic) become the container's Garden network; every network is marked preconfigured.", "ignored, as the Go CPI"),
    key("stemcell cloud_properties", "-", "-", "Not read; a light stemcell (`stemcell_formats` docker-light/warden-light, `image_reference`) is not supported.", "light stemcells: not implemented (the Go CPI has them)"),
];

/// The README's reference section, between its markers.
pub fn markdown() -> String {
    Reference {
        config_heading: "`cpi.json`",
        config: CONFIG,
        job_spec: "`jobs/warden_cpi/spec`",
        incumbent: "cloudfoundry/bosh-warden-cpi-release",
        incumbent_commit: INCUMBENT_COMMIT,
        job: JOB,
        vm_cloud_properties: VM_CLOUD_PROPERTIES,
        other_cloud_properties: OTHER_CLOUD_PROPERTIES,
    }
    .markdown()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpi::reference::{check_readme, leaf_paths};
    use serde_json::{json, Value};
    use std::collections::BTreeSet;

    #[test]
    fn the_readme_shows_this_reference() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        check_readme(path, &markdown(), "cpi-warden");
    }

    /// A config with every key of the reference set.
    fn full() -> Value {
        json!({
            "start_containers_with_systemd": true,
            "Warden": {"ConnectNetwork": "tcp", "ConnectAddress": "127.0.0.1:7777"},
            "Actions": {"StemcellsDir": "/s", "ExpandStemcellTarball": false, "DisksDir": "/d",
                        "HostEphemeralBindMountsDir": "/e", "HostPersistentBindMountsDir": "/p",
                        "GuestEphemeralBindMountPath": "/var/vcap/data", "GuestPersistentBindMountsDir": "/w",
                        "Agent": {"Mbus": "nats://u:ref-test-pw@h:4222", "NTP": ["ntp"],
                                  "Blobstore": {"Provider": "dav", "Options": {"a": 1}}},
                        "AgentEnvService": "file",
                        "Registry": {"Host": "h", "Port": 1, "Username": "u", "Password": "p"}}
        })
    }

    #[test]
    fn every_config_key_is_read_and_every_key_read_is_listed() {
        let parsed = cpi::config::parse::<crate::config::Config>(full()).unwrap();
        assert!(
            parsed.unknown_keys.is_empty(),
            "listed but not read: {:?}",
            parsed.unknown_keys
        );
        let leaves = ["Actions.Agent.Blobstore.Options", "Actions.Registry"];
        let listed: BTreeSet<String> = CONFIG.iter().map(|k| k.key.to_owned()).collect();
        let mut given = BTreeSet::new();
        leaf_paths(&full(), "", &leaves, &mut given);
        assert_eq!(given, listed, "the test's full config and the reference");
        // The types, serialised with their own key names: a field added to
        // Config without a line in the reference fails here.
        let mut typed = BTreeSet::new();
        leaf_paths(
            &serde_json::to_value(&parsed.config).unwrap(),
            "",
            &leaves,
            &mut typed,
        );
        assert_eq!(typed, listed, "the config types and the reference");
    }

    #[test]
    fn every_cloud_property_read_is_listed() {
        let mut listed: Vec<&str> = VM_CLOUD_PROPERTIES
            .iter()
            .map(|k| k.key)
            .filter(|k| !k.starts_with('('))
            .collect();
        listed.sort();
        let mut read: Vec<String> = crate::cloud_props::VM_KEYS
            .iter()
            .map(|k| k.to_string())
            .chain(
                crate::cloud_props::PORT_KEYS
                    .iter()
                    .map(|k| format!("ports[].{k}")),
            )
            .collect();
        read.sort();
        assert_eq!(listed, read);
    }

    #[test]
    fn every_incumbent_job_property_has_a_place() {
        // The incumbent spec's property names, as fetched at INCUMBENT_COMMIT.
        let incumbent = [
            "warden_cpi.host_ip",
            "warden_cpi.loopback_range",
            "warden_cpi.no_masq_cidrs",
            "warden_cpi.warden.connect_network",
            "warden_cpi.warden.connect_address",
            "warden_cpi.agent.mbus",
            "warden_cpi.agent.ntp",
            "warden_cpi.agent.blobstore.provider",
            "warden_cpi.agent.blobstore.options",
            "warden_cpi.actions.stemcells_dir",
            "warden_cpi.actions.expand_stemcell_tarball",
            "warden_cpi.actions.disks_dir",
            "warden_cpi.actions.host_ephemeral_bind_mounts_dir",
            "warden_cpi.actions.host_persistent_bind_mounts_dir",
            "warden_cpi.actions.guest_ephemeral_bind_mount_path",
            "warden_cpi.actions.guest_persistent_bind_mounts_dir",
            "warden_cpi.start_containers_with_systemd",
        ];
        let ours: Vec<&str> = JOB.iter().map(|p| p.property).collect();
        assert_eq!(ours, incumbent);
        // Each one rendered into cpi.json names a key of the reference.
        for p in JOB {
            if let Some(k) = p
                .goes_to
                .strip_prefix('`')
                .and_then(|s| s.strip_suffix('`'))
            {
                assert!(
                    CONFIG.iter().any(|c| c.key == k),
                    "{} goes to {k}, not in CONFIG",
                    p.property
                );
            }
        }
    }
}
