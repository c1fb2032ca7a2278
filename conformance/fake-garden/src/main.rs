//! `fake-garden --listen 127.0.0.1:PORT --root DIR [--socket PATH]`: the
//! fake alone, for pointing any Garden client or warden CPI at it.

use std::path::PathBuf;

fn main() {
    let mut listen = "127.0.0.1:7777".to_owned();
    let mut root: Option<PathBuf> = None;
    let mut socket: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| die(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--listen" => listen = value(),
            "--root" => root = Some(PathBuf::from(value())),
            "--socket" => socket = Some(PathBuf::from(value())),
            "-h" | "--help" => {
                println!("usage: fake-garden --listen 127.0.0.1:PORT --root DIR [--socket PATH]");
                return;
            }
            other => die(&format!("unknown argument {other} (see --help)")),
        }
    }
    let root = root.unwrap_or_else(|| die("--root DIR is required"));
    let fake = fake_garden::FakeGarden::start(&listen, &root, socket.as_deref())
        .unwrap_or_else(|e| die(&e));
    eprintln!(
        "fake-garden listening on {} (root {})",
        fake.addr(),
        root.display()
    );
    // Serve until stdin closes or the process is killed.
    let mut buf = String::new();
    while std::io::stdin()
        .read_line(&mut buf)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        buf.clear();
    }
    if std::env::var_os("FAKE_GARDEN_EXIT_ON_EOF").is_none() {
        loop {
            std::thread::park();
        }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("fake-garden: {msg}");
    std::process::exit(2)
}
