//! `fake-softlayer --listen 127.0.0.1:PORT [--username U] [--api-key K]
//! [--provisioning-polls N] [--volume-polls N]`: the fake as a standalone
//! server, until killed. Faults through `/_fake/...` (see README.md).

use fake_softlayer::FakeSoftLayer;
use std::net::SocketAddr;

fn main() {
    if let Err(e) = run() {
        eprintln!("fake-softlayer: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("loopback");
    let mut username = fake_softlayer::DEFAULT_USERNAME.to_owned();
    let mut api_key = fake_softlayer::DEFAULT_API_KEY.to_owned();
    let mut polls = 0u32;
    let mut volume_polls = 0u32;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            println!("usage: fake-softlayer --listen 127.0.0.1:PORT [--username U] [--api-key K] [--provisioning-polls N] [--volume-polls N]");
            return Ok(());
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        match name.as_str() {
            "--listen" => {
                listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?
            }
            "--username" => username = value,
            "--api-key" => api_key = value,
            "--provisioning-polls" => {
                polls = value
                    .parse()
                    .map_err(|e| format!("--provisioning-polls: {e}"))?
            }
            "--volume-polls" => {
                volume_polls = value.parse().map_err(|e| format!("--volume-polls: {e}"))?
            }
            other => return Err(format!("unknown flag {other} (see --help)")),
        }
    }
    let fake = FakeSoftLayer::start_on(listen, &username, &api_key)
        .map_err(|e| format!("listening on {listen}: {e}"))?;
    fake.set_provisioning_polls(polls);
    fake.set_volume_polls(volume_polls);
    let (id, gid) = fake.seeded_template();
    println!("fake SoftLayer listening: api_endpoint {}", fake.endpoint());
    println!(
        "object storage: swift_endpoint {} swift_username {}",
        fake.swift_endpoint(),
        fake.swift_username()
    );
    println!("image template {id} (globalIdentifier {gid}); private VLAN 1001, public VLAN 1002 in lon02");
    loop {
        std::thread::park();
    }
}
