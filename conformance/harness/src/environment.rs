//! What the suite needs from a cloud: how to run its CPI, what to pass it,
//! and a way to look at the cloud itself (never only at the CPI's answers),
//! plus the faults it can inject. Each cloud's fake (or, for AWS, the moto
//! launcher) implements this next to its server.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How to start the CPI for one call: binary, arguments (the config path in
/// the form the cloud's job renders) and any environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpiCommand {
    pub binary: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// The registry the harness runs for stemcell API v1 checks; an
/// environment writes it into its CPI config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEndpoint {
    /// `http://127.0.0.1:PORT`, without credentials.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
}

impl RegistryEndpoint {
    /// An endpoint nothing listens on (port 9, discard), for a CPI run that
    /// never reaches the registry (`ping`, config fuzzing).
    pub fn unreachable(password: &str) -> RegistryEndpoint {
        RegistryEndpoint {
            url: "http://127.0.0.1:9".into(),
            host: "127.0.0.1".into(),
            port: 9,
            username: "admin".into(),
            password: password.into(),
        }
    }
}

/// Everything the cloud holds that the suite could have created or leaked.
/// The suite compares it before and after: what it made must be gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    pub vms: Vec<String>,
    pub disks: Vec<String>,
    pub stemcells: Vec<String>,
    pub snapshots: Vec<String>,
    /// Ports, ENIs, floating IP bindings, ordered storage, loop devices…:
    /// anything else a CPI creates, as "kind:id".
    pub other: Vec<String>,
}

/// A fault for the cloud to act out. `inject` answers false when this cloud
/// (or its fake) cannot, and the check is then reported as skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The next `create_vm` fails after the VM (container, instance, server,
    /// guest) exists in the cloud, at the step that follows its creation.
    CreateVmAfterVmExists,
    /// The next `times` requests answer a transient error (503, throttling),
    /// then the cloud answers normally.
    Transient { times: u32 },
    /// Every request answers a server error until `clear_faults`.
    Persistent,
    /// Every request is delayed by this much until `clear_faults`.
    Latency(Duration),
    /// The next request's connection is closed without an answer.
    DropConnection,
}

/// Random faults for the load mode (`conformance load`): each request the
/// CPI sends to the cloud draws independently, with these probabilities, from
/// a generator seeded with `seed` (so a run can be repeated). The shares add
/// up to at most 1; a request that draws none is served normally.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chaos {
    /// Answered the cloud's own throttling error before it acts: EC2
    /// `RequestLimitExceeded` (HTTP 503), OpenStack 429 with `Retry-After`
    /// (Nova, Neutron, Cinder, Glance; Keystone too), SoftLayer's
    /// `SoftLayer_Exception_WebService_RateLimitExceeded`, Garden 503 or a
    /// refused connection.
    pub throttle: f64,
    /// Answered a server error (HTTP 500) before the cloud acts.
    pub server_error: f64,
    /// The cloud acts (the create, delete or attach happens), then the answer
    /// is lost: the connection is closed without a response, or a 500 is
    /// sent in place of the real answer.
    pub lost_answer: f64,
    /// The answer starts (status and headers, part of the body), then the
    /// connection is dropped. The cloud has acted.
    pub drop_mid_body: f64,
    /// Above this many requests per second (over the whole fake, all CPI
    /// processes together), requests are throttled as above. None: no limit.
    pub rate_limit: Option<f64>,
    pub seed: u64,
}

impl Chaos {
    /// The soak of issue 17: 5% server errors, 2% lost answers, 1% dropped
    /// mid-body.
    pub fn soak(seed: u64) -> Chaos {
        Chaos {
            server_error: 0.05,
            lost_answer: 0.02,
            drop_mid_body: 0.01,
            seed,
            ..Chaos::default()
        }
    }

    /// Throttling only: `share` of requests answered the throttling error.
    pub fn throttling(share: f64, seed: u64) -> Chaos {
        Chaos {
            throttle: share,
            seed,
            ..Chaos::default()
        }
    }
}

/// What the fake counted while chaos was on: requests served and faults
/// acted out, by kind. For the load report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChaosCounts {
    pub requests: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub lost_answers: u64,
    pub dropped_mid_body: u64,
}

/// What the cloud served since the last `reset_served`: every request that
/// reached the fake (or the proxy in front of moto), and the time the fake
/// spent answering them, by route. For the bench's cost breakdown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// One entry per request: a route label (`POST /v2.1/servers`,
    /// `ec2:RunInstances`, `garden:GET /containers/:handle/info`) and the
    /// time between the request's last byte in and the answer's last byte
    /// out, as the fake measured it.
    pub requests: Vec<(String, Duration)>,
}

pub trait Environment {
    /// The CPI's name for reports: `cpi-warden`.
    fn name(&self) -> &str;

    /// How to run the CPI (its config already written by the environment).
    fn cpi(&self) -> CpiCommand;

    /// `cloud_properties` for `stemcell.MF` of a heavy stemcell this cloud
    /// imports; None when it cannot import heavy stemcells.
    fn heavy_stemcell_properties(&self) -> Option<Value>;

    /// `cloud_properties` for a light stemcell pointing at an image the
    /// environment made in the cloud beforehand; None when it has none.
    fn light_stemcell_properties(&self) -> Option<Value>;

    /// VM `cloud_properties` that create a VM.
    fn vm_cloud_properties(&self) -> Value;

    /// VM `cloud_properties` the cloud must refuse (an unknown instance type,
    /// a missing subnet), with the key the error message should name.
    fn bad_vm_cloud_properties(&self) -> (Value, &'static str);

    /// A manual network with the `n`th free IP of the test subnet.
    fn manual_network(&self, n: u8) -> Value;

    /// A dynamic network.
    fn dynamic_network(&self) -> Value;

    /// Disk `cloud_properties` for `create_disk`.
    fn disk_cloud_properties(&self) -> Value;

    // ---- Looking at the cloud itself ----

    fn inventory(&self) -> Inventory;

    /// The VM exists and is not terminated/deleted.
    fn vm_exists(&self, vm: &str) -> bool;

    /// The IP the cloud gave the VM (its first NIC).
    fn vm_ip(&self, vm: &str) -> Option<String>;

    /// Metadata as the cloud records it (tags, properties).
    fn vm_metadata(&self, vm: &str) -> BTreeMap<String, String>;

    /// The agent settings the VM receives through the cloud (user data,
    /// metadata service, a file in the VM), parsed; None when there are none.
    /// With stemcell API v1 that is a pointer to the registry.
    fn agent_settings(&self, vm: &str) -> Option<Value>;

    /// Removes the VM behind the CPI's back (a lost VM for the resurrector).
    fn destroy_vm_out_of_band(&self, vm: &str);

    fn disk_exists(&self, disk: &str) -> bool;

    /// The VM the disk is attached to, as the cloud records it.
    fn disk_attached_to(&self, disk: &str) -> Option<String>;

    fn disk_size_mb(&self, disk: &str) -> Option<u64>;

    fn disk_metadata(&self, disk: &str) -> BTreeMap<String, String>;

    /// Writes a file on the persistent disk as seen from inside the VM.
    /// None when the cloud gives no way to reach the disk's contents.
    fn write_on_disk(
        &self,
        vm: &str,
        disk: &str,
        name: &str,
        data: &[u8],
    ) -> Option<Result<(), String>>;

    /// Reads a file from the persistent disk as seen from inside the VM.
    fn read_on_disk(&self, vm: &str, disk: &str, name: &str) -> Option<Result<Vec<u8>, String>>;

    // ---- Faults ----

    fn inject(&self, fault: Fault) -> bool;

    fn clear_faults(&self);

    /// Secrets in the config: none may appear in the CPI's stderr or `log`.
    fn secrets(&self) -> Vec<String>;

    // ---- Added later: default bodies, so existing environments still build ----

    /// The agent block the environment wrote into the CPI config, as the
    /// agent must receive it: `{"mbus": "...", "ntp": [...], "blobstore":
    /// {...}}`. None: the settings checks skip comparing those three keys.
    fn agent_config(&self) -> Option<Value> {
        None
    }

    /// A cid of the given kind (`vm`, `disk`, `stemcell`, `snapshot`) that
    /// has the cloud's shape but names nothing (`i-0123456789abcdef0` on
    /// AWS), for "has_vm of an unknown cid is false" and the like.
    fn unknown_cid(&self, kind: &str) -> String {
        format!("conformance-missing-{kind}-0000")
    }

    /// The members of a heavy stemcell's `image` tarball (a gzipped tar).
    /// The default is a small `root.img`; a cloud that unpacks the image as
    /// a root filesystem may want directories and files instead.
    fn heavy_stemcell_image(&self) -> Vec<(String, Vec<u8>)> {
        crate::stemcell::default_image_members()
    }

    /// The key under which the CPI keeps a stemcell API v1 VM's settings in
    /// the registry (`/instances/{key}/settings`). The default is the VM
    /// cid; OpenStack keys by the server name (`vm-<uuid>`), which the
    /// agent reads back from its user data (`server.name`).
    fn registry_key(&self, vm: &str) -> String {
        vm.to_owned()
    }

    /// Turns random faults on (`Some`) or off (`None`) for every request
    /// that reaches the cloud until called again. Answers false when this
    /// cloud cannot act them out (the load mode then reports it).
    fn chaos(&self, chaos: Option<Chaos>) -> bool {
        let _ = chaos;
        false
    }

    /// What the fake counted since chaos was last turned on.
    fn chaos_counts(&self) -> ChaosCounts {
        ChaosCounts::default()
    }

    /// The environment can serve calls from many CPI processes at once (the
    /// director's `max_in_flight`). The load mode refuses to run K > 1
    /// against an environment that says false.
    fn concurrent(&self) -> bool {
        true
    }

    /// The requests the cloud served since the last `reset_served`, with the
    /// fake's own time for each. None: this environment does not record them.
    fn served(&self) -> Option<Served> {
        None
    }

    fn reset_served(&self) {}

    /// Lets a new stemcell finish any transition the fake keeps it in, as a
    /// real cloud's would by the time its upload is answered. For `bench`'s
    /// baseline CPIs that do not wait for the image themselves (the Go
    /// OpenStack CPI); ours waits, and is never helped.
    fn settle_stemcell(&self, _cid: &str) {}

    /// Makes the fake settle every transitional state at once (a wait ends
    /// on its first look), for `bench --instant-transitions`: the Go
    /// OpenStack CPI polls every 10 s, which would swamp a comparison of
    /// everything else. False: this environment cannot.
    fn instant_transitions(&self) -> bool {
        false
    }
}
