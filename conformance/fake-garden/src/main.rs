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
    // Serve until SIGTERM or SIGINT (or stdin closing, when asked), then
    // drop the fake: that destroys the containers and their bind mounts.
    let stop = stop_pipe();
    if std::env::var_os("FAKE_GARDEN_EXIT_ON_EOF").is_some() {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            notify(stop.1);
        });
    }
    let mut byte = [0u8; 1];
    // SAFETY: reading one byte from the pipe's read end into a local buffer.
    while unsafe { libc::read(stop.0, byte.as_mut_ptr().cast(), 1) } < 0 {}
    drop(fake);
}

static STOP_WRITE_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    notify(STOP_WRITE_FD.load(std::sync::atomic::Ordering::SeqCst));
}

fn notify(fd: libc::c_int) {
    let b = [1u8];
    // SAFETY: write(2) is async-signal-safe; one byte from a local buffer.
    unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
}

/// A pipe the signal handler writes to (the self-pipe trick).
fn stop_pipe() -> (libc::c_int, libc::c_int) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two-int array; signal(2) installs a handler
    // that only calls write(2).
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            die("cannot make a pipe");
        }
        STOP_WRITE_FD.store(fds[1], std::sync::atomic::Ordering::SeqCst);
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    (fds[0], fds[1])
}

fn die(msg: &str) -> ! {
    eprintln!("fake-garden: {msg}");
    std::process::exit(2)
}
