//! What the fake cloud holds: guests, image templates, VLANs, iSCSI volumes
//! and their snapshots, orders and billing items; and how long provisioning
//! takes (counted in polls, so that tests never depend on time).

use crate::faults::Faults;
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

pub const ACCOUNT_ID: u64 = 278444;

/// How a guest's provisioning ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Ready after the configured number of polls.
    #[default]
    Ready,
    /// Stays in its provisioning transaction forever.
    NeverFinishes,
    /// Its provisioning transaction ends in a failed state.
    Fails,
}

#[derive(Clone, Debug)]
pub struct Datacenter {
    pub id: u64,
    pub name: String,
    pub long_name: String,
}

#[derive(Clone, Debug)]
pub struct Vlan {
    pub id: u64,
    pub number: u32,
    /// `PRIVATE` or `PUBLIC`.
    pub space: &'static str,
    pub datacenter: String,
    pub subnet_id: u64,
    /// The first three octets of the VLAN's /24.
    pub prefix: String,
    pub next_host: u8,
}

#[derive(Clone, Debug)]
pub struct Template {
    pub id: u64,
    pub name: String,
    pub global_identifier: String,
    pub created: SystemTime,
    pub note: Option<String>,
    /// The `swift://` URI it was imported from (`createFromExternalSource`).
    pub uri: Option<String>,
    pub os_code: Option<String>,
    pub boot_mode: Option<String>,
    /// An import still running: polls left, how it ends, its transaction.
    pub import: Option<Import>,
    /// The import ended in failure (the template stays, unusable).
    pub import_failed: bool,
}

/// A template's import from object storage, counted in polls like
/// provisioning.
#[derive(Clone, Debug)]
pub struct Import {
    pub polls_left: u32,
    pub outcome: Outcome,
    pub transaction_id: u64,
}

#[derive(Clone, Debug)]
pub struct AllowedHost {
    pub id: u64,
    pub name: String,
    pub credential_id: u64,
    pub username: String,
    pub password: String,
}

#[derive(Clone, Debug)]
pub struct Guest {
    pub id: u64,
    pub global_identifier: String,
    pub hostname: String,
    pub domain: String,
    pub datacenter: String,
    pub cpus: u32,
    pub memory_mb: u64,
    pub flavor: Option<String>,
    pub hourly: bool,
    pub local_disk: bool,
    pub dedicated: bool,
    pub dedicated_host_id: Option<u64>,
    pub private_only: bool,
    pub max_speed: u32,
    /// The second disk's size (GB), from the template's `blockDevices`.
    pub ephemeral_gb: u64,
    pub template_gid: String,
    pub private_vlan: u64,
    pub public_vlan: Option<u64>,
    pub backend_ip: String,
    pub public_ip: Option<String>,
    pub ssh_key_ids: Vec<u64>,
    pub tags: Vec<String>,
    pub user_data: Option<String>,
    pub created: SystemTime,
    pub provisioned: Option<SystemTime>,
    /// Polls left before provisioning ends.
    pub polls_left: u32,
    pub outcome: Outcome,
    pub transaction_id: u64,
    pub billing_item_id: u64,
    pub allowed_host: Option<AllowedHost>,
    pub reboots: u32,
    pub power_on: bool,
    /// OS reloads done (`reloadOperatingSystem`).
    pub os_reloads: u32,
    /// The provision date before the running OS reload.
    pub previous_provision: Option<SystemTime>,
}

#[derive(Clone, Debug)]
pub struct Volume {
    pub id: u64,
    pub username: String,
    pub capacity_gb: u64,
    pub iops: Option<u64>,
    /// Endurance tier keyName, when ordered by tier.
    pub tier: Option<String>,
    pub snapshot_gb: u64,
    pub datacenter: String,
    pub lun_id: u32,
    pub target_ip: String,
    pub notes: Option<String>,
    pub order_id: u64,
    /// The order container's `containerIdentifier`, as the orderer set it.
    pub container_identifier: Option<String>,
    pub billing_item_id: u64,
    pub allowed_guests: BTreeSet<u64>,
    pub created: SystemTime,
    /// Polls of the account's volume list before the volume is listed.
    pub polls_left: u32,
    /// Data written "from inside the VM", for the disk survival checks.
    pub files: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub id: u64,
    pub volume_id: u64,
    pub notes: Option<String>,
    pub created: SystemTime,
}

#[derive(Clone, Debug)]
pub struct SshKey {
    pub id: u64,
    pub label: String,
    pub key: String,
}

/// Everything the fake holds. One lock around it: requests are few.
pub struct State {
    pub username: String,
    pub api_key: String,
    next_id: u64,
    pub datacenters: Vec<Datacenter>,
    pub vlans: BTreeMap<u64, Vlan>,
    pub templates: BTreeMap<u64, Template>,
    pub guests: BTreeMap<u64, Guest>,
    pub volumes: BTreeMap<u64, Volume>,
    pub snapshots: BTreeMap<u64, Snapshot>,
    pub ssh_keys: BTreeMap<u64, SshKey>,
    /// Polls a new guest takes to provision (0 = ready at once).
    pub provisioning_polls: u32,
    pub provisioning_outcome: Outcome,
    /// Polls a new volume takes before it is listed.
    pub volume_polls: u32,
    /// Polls of a template imported from object storage before it is
    /// active, and how the import ends.
    pub import_polls: u32,
    pub import_outcome: Outcome,
    /// The object store image imports read from.
    pub swift: crate::swift::Swift,
    pub faults: Faults,
    /// Every request as `Service::method`, in order.
    pub calls: Vec<String>,
    /// Random faults for the load mode, while on.
    pub chaos: Option<crate::chaos::ChaosState>,
    /// API requests served since the last reset: route and the fake's time.
    pub served: Vec<(String, std::time::Duration)>,
}

impl State {
    pub fn new(username: &str, api_key: &str) -> State {
        let mut s = State {
            username: username.into(),
            api_key: api_key.into(),
            next_id: 100_000,
            datacenters: vec![
                Datacenter {
                    id: 352494,
                    name: "lon02".into(),
                    long_name: "London 2".into(),
                },
                Datacenter {
                    id: 1441195,
                    name: "dal10".into(),
                    long_name: "Dallas 10".into(),
                },
            ],
            vlans: BTreeMap::new(),
            templates: BTreeMap::new(),
            guests: BTreeMap::new(),
            volumes: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            ssh_keys: BTreeMap::new(),
            provisioning_polls: 0,
            provisioning_outcome: Outcome::Ready,
            volume_polls: 0,
            import_polls: 0,
            import_outcome: Outcome::Ready,
            swift: crate::swift::Swift::new(
                format!("SLOS{ACCOUNT_ID}-2"),
                format!("SLOS{ACCOUNT_ID}-2:{username}"),
            ),
            faults: Faults::default(),
            calls: Vec::new(),
            chaos: None,
            served: Vec::new(),
        };
        for (id, number, space, dc, prefix) in [
            (1_001, 1101, "PRIVATE", "lon02", "10.112.10"),
            (1_002, 1102, "PUBLIC", "lon02", "169.50.10"),
            (1_003, 1103, "PRIVATE", "dal10", "10.180.20"),
            (1_004, 1104, "PUBLIC", "dal10", "169.60.20"),
        ] {
            s.vlans.insert(
                id,
                Vlan {
                    id,
                    number,
                    space,
                    datacenter: dc.into(),
                    subnet_id: id + 5_000,
                    prefix: prefix.into(),
                    next_host: 211,
                },
            );
        }
        s.add_template(
            "bosh-stemcell-ubuntu-jammy",
            "3f4ab6c2-0d1e-4c36-9b8a-5f2f6d7e8a90",
        );
        s
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add_template(&mut self, name: &str, global_identifier: &str) -> u64 {
        let id = self.next_id();
        self.templates.insert(
            id,
            Template {
                id,
                name: name.into(),
                global_identifier: global_identifier.into(),
                created: SystemTime::now(),
                note: None,
                uri: None,
                os_code: None,
                boot_mode: None,
                import: None,
                import_failed: false,
            },
        );
        id
    }

    pub fn datacenter(&self, name: &str) -> Option<&Datacenter> {
        self.datacenters.iter().find(|d| d.name == name)
    }

    /// The next free address on a VLAN. Automatic addresses come from .211
    /// to .250, so that manual networks can ask for .2 to .210.
    pub fn allocate_ip(&mut self, vlan: u64) -> Option<String> {
        let used: BTreeSet<String> = self
            .guests
            .values()
            .flat_map(|g| [Some(g.backend_ip.clone()), g.public_ip.clone()])
            .flatten()
            .collect();
        let v = self.vlans.get_mut(&vlan)?;
        for _ in 0..240 {
            let ip = format!("{}.{}", v.prefix, v.next_host);
            v.next_host = if v.next_host >= 250 {
                10
            } else {
                v.next_host + 1
            };
            if !used.contains(&ip) {
                return Some(ip);
            }
        }
        None
    }

    /// Whether `ip` is a free address of the VLAN's subnet.
    pub fn ip_free_on(&self, vlan: u64, ip: &str) -> bool {
        let Some(v) = self.vlans.get(&vlan) else {
            return false;
        };
        let in_subnet = ip
            .strip_prefix(&format!("{}.", v.prefix))
            .and_then(|h| h.parse::<u8>().ok())
            .is_some_and(|h| (2..=254).contains(&h));
        in_subnet && !self.guests.values().any(|g| g.backend_ip == ip)
    }

    /// Removes a guest and every authorisation it held.
    pub fn remove_guest(&mut self, id: u64) -> bool {
        let existed = self.guests.remove(&id).is_some();
        for v in self.volumes.values_mut() {
            v.allowed_guests.remove(&id);
        }
        existed
    }
}

/// RFC 3339 in UTC, as the REST API writes dates (`2026-11-26T10:08:05+00:00`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_151_685);
        assert_eq!(rfc3339(t), "2025-11-26T10:08:05+00:00");
    }
}
