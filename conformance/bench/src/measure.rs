//! Running a process once and measuring it: wall time and peak memory
//! (the child's own max RSS, from wait4).

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Run {
    pub wall: Duration,
    /// Peak resident memory of the process, in KiB.
    pub max_rss_kib: u64,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
}

/// Runs `cmd` with `stdin`, measuring it from spawn to exit.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> std::io::Result<Run> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    {
        let mut input = child.stdin.take().expect("piped stdin");
        // A process that exits without reading (/bin/true) closes the pipe.
        let _ = input.write_all(stdin);
    }
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_end(&mut out, &mut stdout)?;
    }
    let mut status = 0i32;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid, with valid out-pointers; std's
    // Child is not waited on afterwards, so the pid is reaped exactly once.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    std::mem::forget(child);
    Ok(Run {
        wall,
        max_rss_kib: usage.ru_maxrss as u64,
        status: ExitStatus::from_raw(status),
        stdout,
    })
}

/// The median of `runs` runs of the same command.
pub fn median(runs: usize, mut one: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| one()).collect();
    times.sort();
    times[times.len() / 2]
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
