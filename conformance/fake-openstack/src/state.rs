//! What the fake cloud holds: resources as the API shows them (JSON), with
//! pending state changes applied on later reads so that waits are exercised.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A resource and the state it moves to on a later read.
#[derive(Clone, Debug)]
pub struct Entry {
    pub body: Value,
    pub pending: Option<Pending>,
}

#[derive(Clone, Debug)]
pub struct Pending {
    /// The next status, or None: the resource goes away.
    pub to: Option<String>,
    pub polls: u32,
    /// And not before this moment (`transition_delay` after the change).
    pub not_before: std::time::Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Server,
    Volume,
    Snapshot,
    Image,
}

#[derive(Default)]
pub struct State {
    pub tokens: HashSet<String>,
    pub servers: BTreeMap<String, Entry>,
    pub volumes: BTreeMap<String, Entry>,
    pub snapshots: BTreeMap<String, Entry>,
    pub images: BTreeMap<String, Entry>,
    pub ports: BTreeMap<String, Value>,
    pub floating_ips: BTreeMap<String, Value>,
    /// Octavia pools (seeded) and their members (made by the CPI).
    pub pools: Vec<Value>,
    pub members: BTreeMap<String, Value>,
    /// Nova server groups.
    pub server_groups: BTreeMap<String, Value>,
    pub security_groups: Vec<Value>,
    pub flavors: Vec<Value>,
    pub keypairs: Vec<String>,
    pub networks: Vec<String>,
    /// Decoded user data per server.
    pub user_data: HashMap<String, String>,
    /// Bytes uploaded per image.
    pub image_bytes: HashMap<String, u64>,
    /// Files on each volume, as a VM would see them.
    pub disk_files: HashMap<String, BTreeMap<String, Vec<u8>>>,
    /// Reads before a transitional state settles (1: the next read sees it).
    pub transition_polls: u32,
    /// Time before a transitional state may settle (besides the reads).
    pub transition_delay: std::time::Duration,
    /// The next transition of these kinds ends in an error status.
    pub fail_next: HashSet<Kind>,
    /// Every request, as "METHOD /path".
    pub calls: Vec<String>,
    pub next_ip: u8,
    /// How long an issued token lives (its `expires_at`).
    pub token_lifetime: std::time::Duration,
    pub password: String,
    pub app_credential: (String, String),
    /// Image ids made at start-up (light stemcells), not the suite's.
    pub seeded_images: HashSet<String>,
}

pub const PROJECT_ID: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
pub const NET_ID: &str = "net-1";
pub const LIGHT_IMAGE_ID: &str = "light-image-1";
pub const FLOATING_IP: &str = "172.24.4.10";

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl State {
    pub fn seeded(password: &str) -> State {
        let mut s = State {
            transition_polls: 1,
            next_ip: 100,
            token_lifetime: std::time::Duration::from_secs(3600),
            password: password.to_owned(),
            app_credential: ("app-cred-1".into(), format!("{password}-app")),
            ..State::default()
        };
        s.flavors = vec![
            json!({"id": "1", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20, "OS-FLV-EXT-DATA:ephemeral": 10, "swap": ""}),
            json!({"id": "2", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 40, "OS-FLV-EXT-DATA:ephemeral": 0, "swap": ""}),
        ];
        s.security_groups = vec![
            json!({"id": "sg-default", "name": "default"}),
            json!({"id": "sg-bosh", "name": "bosh"}),
        ];
        s.keypairs = vec!["bosh".into()];
        // A group the operator made, for `scheduler_hints.group`.
        s.server_groups.insert(
            "g-1".into(),
            json!({"id": "g-1", "name": "operator-group", "policies": ["anti-affinity"], "members": []}),
        );
        s.pools = vec![
            json!({"id": "pool-web", "name": "web", "loadbalancers": [{"id": "lb-1"}], "protocol": "HTTP"}),
            json!({"id": "pool-ssh", "name": "ssh", "loadbalancers": [{"id": "lb-1"}], "protocol": "TCP"}),
        ];
        s.networks = vec![NET_ID.into()];
        s.floating_ips.insert(
            "fip-1".into(),
            json!({"id": "fip-1", "floating_ip_address": FLOATING_IP, "port_id": null}),
        );
        s.images.insert(
            LIGHT_IMAGE_ID.into(),
            Entry { body: json!({"id": LIGHT_IMAGE_ID, "name": "light", "status": "active", "visibility": "public"}), pending: None },
        );
        s.seeded_images.insert(LIGHT_IMAGE_ID.into());
        s
    }

    pub fn map(&mut self, kind: Kind) -> &mut BTreeMap<String, Entry> {
        match kind {
            Kind::Server => &mut self.servers,
            Kind::Volume => &mut self.volumes,
            Kind::Snapshot => &mut self.snapshots,
            Kind::Image => &mut self.images,
        }
    }

    /// Puts a resource in `now`, settling to `to` (None: gone) on a later read.
    pub fn transition(&mut self, kind: Kind, id: &str, now: &str, to: Option<&str>) {
        let polls = self.transition_polls;
        let failed = to.is_some() && self.fail_next.remove(&kind);
        let to = if failed {
            Some(
                if kind == Kind::Server {
                    "ERROR"
                } else if kind == Kind::Image {
                    "killed"
                } else {
                    "error"
                }
                .to_owned(),
            )
        } else {
            to.map(str::to_owned)
        };
        let delay = self.transition_delay;
        if let Some(e) = self.map(kind).get_mut(id) {
            e.body["status"] = json!(now);
            let not_before = std::time::Instant::now() + delay;
            e.pending = Some(Pending {
                to,
                polls,
                not_before,
            });
            if polls == 0 && delay.is_zero() {
                self.settle(kind, id);
            }
        }
    }

    /// A read: answers the resource as it is now, then moves it along.
    pub fn read(&mut self, kind: Kind, id: &str) -> Option<Value> {
        let body = self.map(kind).get(id)?.body.clone();
        let due = match &mut self.map(kind).get_mut(id)?.pending {
            Some(p) => {
                p.polls = p.polls.saturating_sub(1);
                p.polls == 0 && std::time::Instant::now() >= p.not_before
            }
            None => false,
        };
        if due {
            self.settle(kind, id);
        }
        Some(body)
    }

    fn settle(&mut self, kind: Kind, id: &str) {
        let Some(e) = self.map(kind).get_mut(id) else {
            return;
        };
        match e.pending.take().map(|p| p.to) {
            Some(Some(status)) => e.body["status"] = json!(status),
            Some(None) => {
                self.map(kind).remove(id);
                self.forget(kind, id);
            }
            None => {}
        }
    }

    /// Removes a resource at once, with what goes with it.
    pub fn remove_now(&mut self, kind: Kind, id: &str) {
        if self.map(kind).remove(id).is_some() {
            self.forget(kind, id);
        }
    }

    /// What goes with a resource when it is gone.
    fn forget(&mut self, kind: Kind, id: &str) {
        match kind {
            Kind::Server => {
                self.user_data.remove(id);
                for g in self.server_groups.values_mut() {
                    if let Some(m) = g["members"].as_array_mut() {
                        m.retain(|x| x != id);
                    }
                }
                // Nova deletes the ports it made; ports passed in are unbound.
                let mine: Vec<String> = self
                    .ports
                    .iter()
                    .filter(|(_, p)| p["device_id"] == id)
                    .map(|(k, _)| k.clone())
                    .collect();
                for pid in mine {
                    if self.ports[&pid]["device_owner"] == "nova-auto" {
                        self.delete_port(&pid);
                    } else if let Some(p) = self.ports.get_mut(&pid) {
                        p["device_id"] = json!("");
                    }
                }
                for v in self.volumes.values_mut() {
                    let attached = v.body["attachments"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x["server_id"] == id));
                    if attached {
                        v.body["attachments"] = json!([]);
                        v.body["status"] = json!("available");
                    }
                }
            }
            Kind::Volume => {
                self.disk_files.remove(id);
            }
            Kind::Image => {
                self.image_bytes.remove(id);
            }
            Kind::Snapshot => {}
        }
    }

    pub fn delete_port(&mut self, id: &str) -> bool {
        for f in self.floating_ips.values_mut() {
            if f["port_id"] == id {
                f["port_id"] = json!(null);
            }
        }
        self.ports.remove(id).is_some()
    }

    pub fn new_ip(&mut self) -> String {
        self.next_ip = self.next_ip.wrapping_add(1).max(100);
        format!("10.0.0.{}", self.next_ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_settle_on_a_later_read_or_fail_when_told() {
        let mut s = State::seeded("pw");
        s.volumes.insert(
            "v".into(),
            Entry {
                body: json!({"id": "v", "status": ""}),
                pending: None,
            },
        );
        s.transition(Kind::Volume, "v", "creating", Some("available"));
        assert_eq!(s.read(Kind::Volume, "v").unwrap()["status"], "creating");
        assert_eq!(s.read(Kind::Volume, "v").unwrap()["status"], "available");
        s.fail_next.insert(Kind::Volume);
        s.transition(Kind::Volume, "v", "extending", Some("available"));
        s.read(Kind::Volume, "v");
        assert_eq!(s.read(Kind::Volume, "v").unwrap()["status"], "error");
        s.transition(Kind::Volume, "v", "deleting", None);
        s.read(Kind::Volume, "v");
        assert!(s.read(Kind::Volume, "v").is_none());
    }

    #[test]
    fn a_delay_holds_the_transition_back() {
        let mut s = State::seeded("pw");
        s.transition_delay = std::time::Duration::from_secs(3600);
        s.volumes.insert(
            "v".into(),
            Entry {
                body: json!({"id": "v", "status": ""}),
                pending: None,
            },
        );
        s.transition(Kind::Volume, "v", "creating", Some("available"));
        for _ in 0..5 {
            assert_eq!(s.read(Kind::Volume, "v").unwrap()["status"], "creating");
        }
    }
}
