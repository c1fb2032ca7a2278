//! `fake-openstack --listen 127.0.0.1:PORT [--password PW] [--transition-polls N]
//! [--transition-delay-ms MS]`: the fake as a standalone server, until killed.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut listen = "127.0.0.1:5000".to_owned();
    let mut password = "secret".to_owned();
    let mut polls = 1u32;
    let mut delay_ms = 0u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "--listen" => listen = value().unwrap_or_else(|| usage("--listen needs ADDRESS:PORT")),
            "--password" => password = value().unwrap_or_else(|| usage("--password needs a value")),
            "--transition-polls" => {
                polls = value()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--transition-polls needs a number"))
            }
            "--transition-delay-ms" => {
                delay_ms = value()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--transition-delay-ms needs a number"))
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument '{other}'")),
        }
    }
    let addr = listen
        .parse()
        .unwrap_or_else(|_| usage(&format!("'{listen}' is not ADDRESS:PORT")));
    let fake = fake_openstack::FakeOpenStack::start_on(addr, &password)
        .unwrap_or_else(|e| usage(&e.to_string()));
    fake.set_transition_polls(polls);
    fake.set_transition_delay(std::time::Duration::from_millis(delay_ms));
    println!("fake OpenStack listening; auth_url {}", fake.auth_url());
    println!(
        "user {} / domain {} / project {}",
        fake_openstack::USERNAME,
        fake_openstack::DOMAIN,
        fake_openstack::PROJECT
    );
    loop {
        std::thread::park();
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("fake-openstack: {problem}");
    }
    eprintln!("usage: fake-openstack --listen 127.0.0.1:PORT [--password PW] [--transition-polls N] [--transition-delay-ms MS]");
    std::process::exit(if problem.is_empty() { 0 } else { 2 })
}
