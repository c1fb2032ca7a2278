//! `make bench`: how fast our CPIs start, beside `/bin/true` (the floor of
//! any process) and the incumbents' figures, and how fast and in how much
//! memory they import a heavy stemcell, beside the floor of decompressing
//! (and hashing) the same bytes. Figures, not pass/fail: speed targets live
//! here, never in timed tests.

mod image;
mod measure;

use harness::{CpiCommand, Environment, RegistryEndpoint};
use measure::{median, ms, run};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Options {
    bin_dir: PathBuf,
    runs: usize,
    image_mib: u64,
    only: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        bin_dir: PathBuf::from("target/debug"),
        runs: 200,
        image_mib: 1024,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--bin-dir" => o.bin_dir = value("--bin-dir")?.into(),
            "--runs" => {
                o.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--image-mib" => {
                o.image_mib = value("--image-mib")?
                    .parse()
                    .map_err(|e| format!("--image-mib: {e}"))?
            }
            "--only" => o.only = Some(value("--only")?),
            "--help" | "-h" => {
                println!("cpi-bench [--bin-dir DIR] [--runs N] [--image-mib MIB] [--only startup|stemcell]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// The incumbents' per-process figures on this kind of machine, for `info`.
fn incumbent_info(cloud: &str) -> &'static str {
    match cloud {
        "warden" => "Go warden CPI: 4 ms",
        "aws" => "Ruby AWS CPI: 600-800 ms",
        "openstack" => "Ruby OpenStack CPI: 240-350 ms; Go: 3-18 ms",
        "softlayer" => "Go SoftLayer CPI: 30-55 ms",
        _ => "",
    }
}

fn dummy_registry() -> RegistryEndpoint {
    RegistryEndpoint {
        url: "http://127.0.0.1:9".into(),
        host: "127.0.0.1".into(),
        port: 9,
        username: "bench".into(),
        password: "bench-registry-password".into(),
    }
}

fn start(cloud: &str, bin_dir: &Path) -> Result<Box<dyn Environment>, String> {
    let bin = bin_dir.join(format!("cpi-{cloud}"));
    if !bin.exists() {
        return Err(format!("{} not built", bin.display()));
    }
    let registry = dummy_registry();
    match cloud {
        "warden" => fake_garden::start_environment(&bin, &registry),
        "openstack" => fake_openstack::start_environment(&bin, &registry),
        "softlayer" => fake_softlayer::start_environment(&bin, &registry),
        "aws" => env_aws::start_environment(&bin, &registry),
        _ => Err(format!("unknown cloud {cloud}")),
    }
}

fn command(cpi: &CpiCommand) -> Command {
    let mut c = Command::new(&cpi.binary);
    c.args(&cpi.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(cpi.env.iter().map(|(k, v)| (k, v)));
    c
}

fn request(method: &str, arguments: serde_json::Value) -> Vec<u8> {
    json!({"method": method, "arguments": arguments, "api_version": 2,
           "context": {"director_uuid": "bench", "request_id": "bench", "vm": {"stemcell": {"api_version": 2}}}})
    .to_string()
    .into_bytes()
}

fn time_call(cpi: &CpiCommand, req: &[u8]) -> Duration {
    let r = run(&mut command(cpi), req).expect("CPI runs");
    assert!(r.status.success(), "CPI exited with {}", r.status);
    r.wall
}

const CLOUDS: [&str; 4] = ["warden", "openstack", "softlayer", "aws"];

fn startup(o: &Options) {
    println!(
        "== start-up: wall time per process, median of {} runs",
        o.runs
    );
    let floor = median(o.runs, || {
        run(&mut Command::new("/bin/true"), b"{}")
            .expect("/bin/true runs")
            .wall
    });
    println!("  {:<34} {:>10}   (floor)", "/bin/true", ms(floor));
    let report = |name: &str, what: &str, t: Duration, incumbent: &str| {
        println!(
            "  {:<34} {:>10}   {:+.2} ms over the floor, {:.1}x   {incumbent}",
            format!("{name} {what}"),
            ms(t),
            (t.as_secs_f64() - floor.as_secs_f64()) * 1e3,
            t.as_secs_f64() / floor.as_secs_f64()
        );
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let echo_cfg = dir.path().join("echo.json");
    std::fs::write(&echo_cfg, r#"{"echo": {}}"#).expect("write config");
    let echo = CpiCommand {
        binary: o.bin_dir.join("cpi-echo"),
        args: vec![echo_cfg.display().to_string()],
        env: vec![],
    };
    if echo.binary.exists() {
        for (m, what) in [("info", "info"), ("ping", "ping (config parse)")] {
            let req = request(m, json!([]));
            report(
                "cpi-echo",
                what,
                median(o.runs, || time_call(&echo, &req)),
                "",
            );
        }
    }
    for cloud in CLOUDS {
        let env = match start(cloud, &o.bin_dir) {
            Ok(env) => env,
            Err(e) => {
                println!("  cpi-{cloud:<30} not measured: {e}");
                continue;
            }
        };
        let cpi = env.cpi();
        for (m, what) in [("info", "info"), ("ping", "ping (config parse)")] {
            let req = request(m, json!([]));
            let t = median(o.runs, || time_call(&cpi, &req));
            report(
                &format!("cpi-{cloud}"),
                what,
                t,
                if m == "info" {
                    incumbent_info(cloud)
                } else {
                    ""
                },
            );
        }
    }
    println!("  aim: info within 2 ms of the floor");
}

/// The floor of every import: decompressing `root.img` out of the image.
fn floor_read(image: &Path, hash: bool) -> Duration {
    use sha2::Digest;
    let start = Instant::now();
    stemcell::root_img_blocks(image, 512 * 1024, |b| {
        if hash {
            std::hint::black_box(sha2::Sha256::digest(&b.data));
        }
        Ok(())
    })
    .expect("image reads");
    start.elapsed()
}

fn stemcells(o: &Options) {
    let size = o.image_mib << 20;
    println!(
        "== heavy stemcell import: a generated {} MiB root.img",
        o.image_mib
    );
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let t = Instant::now();
    let image = image::generate(dir.path(), size).expect("image generated");
    let compressed = std::fs::metadata(&image).map(|m| m.len()).unwrap_or(0);
    println!(
        "  generated in {:.1} s ({} MiB compressed)",
        t.elapsed().as_secs_f64(),
        compressed >> 20
    );
    let mib_s = |d: Duration| size as f64 / (1 << 20) as f64 / d.as_secs_f64();

    let untar = dir.path().join("untar");
    std::fs::create_dir(&untar).expect("mkdir");
    let shell = format!(
        "gzip -dc {} | tar -x -C {}",
        image.display(),
        untar.display()
    );
    let tar_floor = run(Command::new("sh").arg("-c").arg(&shell), b"")
        .expect("gzip | tar")
        .wall;
    let _ = std::fs::remove_dir_all(&untar);
    let read_floor = floor_read(&image, false);
    let hash_floor = floor_read(&image, true);
    println!(
        "  {:<44} {:>9.1} s {:>8.0} MiB/s   (floor)",
        "gzip -dc | tar -x",
        tar_floor.as_secs_f64(),
        mib_s(tar_floor)
    );
    println!(
        "  {:<44} {:>9.1} s {:>8.0} MiB/s   (floor)",
        "read root.img",
        read_floor.as_secs_f64(),
        mib_s(read_floor)
    );
    println!(
        "  {:<44} {:>9.1} s {:>8.0} MiB/s   (floor)",
        "read and SHA-256 root.img in 512 KiB blocks",
        hash_floor.as_secs_f64(),
        mib_s(hash_floor)
    );

    for (cloud, floor, floor_name) in [
        ("warden", tar_floor, "gzip -dc | tar -x"),
        ("openstack", read_floor, "read"),
        ("aws", hash_floor, "read and hash"),
    ] {
        let env = match start(cloud, &o.bin_dir) {
            Ok(env) => env,
            Err(e) => {
                println!("  cpi-{cloud:<40} not measured: {e}");
                continue;
            }
        };
        let Some(props) = env.heavy_stemcell_properties() else {
            println!("  cpi-{cloud:<40} not measured: no heavy stemcells");
            continue;
        };
        let cpi = env.cpi();
        let req = request(
            "create_stemcell",
            json!([image.display().to_string(), props]),
        );
        let r = match run(&mut command(&cpi), &req) {
            Ok(r) => r,
            Err(e) => {
                println!("  cpi-{cloud:<40} failed to run: {e}");
                continue;
            }
        };
        let resp: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap_or_default();
        if !resp["error"].is_null() {
            println!(
                "  cpi-{cloud:<40} create_stemcell failed: {}",
                resp["error"]["message"]
            );
            continue;
        }
        println!(
            "  {:<44} {:>9.1} s {:>8.0} MiB/s   {:.2}x the {floor_name} floor, peak memory {} MiB (aim: 1.2x, < 64 MiB)",
            format!("cpi-{cloud} create_stemcell"),
            r.wall.as_secs_f64(),
            mib_s(r.wall),
            r.wall.as_secs_f64() / floor.as_secs_f64(),
            r.max_rss_kib / 1024
        );
        let del = request("delete_stemcell", json!([resp["result"]]));
        let _ = run(&mut command(&cpi), &del);
    }
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cpi-bench: {e}");
            std::process::exit(2);
        }
    };
    if o.only.as_deref().is_none_or(|s| s == "startup") {
        startup(&o);
    }
    if o.only.as_deref().is_none_or(|s| s == "stemcell") {
        stemcells(&o);
    }
}
