//! Fuzzing the stemcell tarball reader with hand-built tar archives: plain,
//! gzipped (one or two gzip members), with absolute and `..` names, symbolic
//! and hard links leaving the destination, devices, GNU long names, pax
//! headers (small and huge), GNU sparse members, oversize size fields,
//! mutated bytes and truncation at every offset. Properties: no panic;
//! `unpack` writes nothing outside its destination and no link; a
//! `root.img` read that succeeds gave exactly the member's bytes; the tar
//! reader's metadata stays bounded. Regression inputs (archives) live in
//! `tests/regressions/tarball/`.

use cpi::fuzz::{self, Gen, Verdict};
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

const MANIFEST: &str = "name: fuzz\nversion: '1.0'\napi_version: 3\nstemcell_formats: [openstack-raw]\ncloud_properties: {disk: 3072}\n";

fn octal(field: &mut [u8], v: u64) {
    let width = field.len() - 1;
    if v >= 8u64.pow(width as u32) {
        // GNU base-256 for sizes that do not fit.
        field.iter_mut().for_each(|b| *b = 0);
        field[0] = 0x80;
        let bytes = v.to_be_bytes();
        let n = field.len();
        field[n - 8..].copy_from_slice(&bytes);
        return;
    }
    let s = format!("{v:0width$o}");
    field[..width].copy_from_slice(s.as_bytes());
    field[width] = 0;
}

/// One 512-byte tar header.
fn header(name: &[u8], kind: u8, size: u64, link: &[u8], gnu: bool) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    if gnu {
        h[257..265].copy_from_slice(b"ustar  \0");
    } else {
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
    }
    checksum(&mut h);
    h
}

fn checksum(h: &mut [u8; 512]) {
    h[148..156].iter_mut().for_each(|b| *b = b' ');
    let sum: u64 = h.iter().map(|b| *b as u64).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

fn pad(out: &mut Vec<u8>) {
    while out.len() % 512 != 0 {
        out.push(0);
    }
}

fn member(out: &mut Vec<u8>, name: &[u8], kind: u8, data: &[u8], link: &[u8]) {
    if name.len() > 100 {
        out.extend_from_slice(&header(
            b"././@LongLink",
            b'L',
            name.len() as u64 + 1,
            b"",
            true,
        ));
        out.extend_from_slice(name);
        out.push(0);
        pad(out);
    }
    out.extend_from_slice(&header(name, kind, data.len() as u64, link, true));
    out.extend_from_slice(data);
    pad(out);
}

fn pax(out: &mut Vec<u8>, records: &[(&str, &str)]) {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = format!(" {k}={v}\n");
        let mut len = rest.len() + 1;
        while format!("{len}{rest}").len() != len {
            len += 1;
        }
        body.extend_from_slice(format!("{len}{rest}").as_bytes());
    }
    out.extend_from_slice(&header(b"PaxHeader", b'x', body.len() as u64, b"", false));
    out.extend_from_slice(&body);
    pad(out);
}

/// A GNU sparse member of `real` bytes holding one chunk of `data` at 0.
fn sparse(out: &mut Vec<u8>, name: &[u8], real: u64, data: &[u8]) {
    let mut h = header(name, b'S', data.len() as u64, b"", true);
    octal(&mut h[386..398], 0);
    octal(&mut h[398..410], data.len() as u64);
    h[482] = 0;
    octal(&mut h[483..495], real);
    checksum(&mut h);
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    pad(out);
}

/// The inner image: a tar holding `root.img` of `bytes`, gzipped.
fn image_of(bytes: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    member(&mut t, b"root.img", b'0', bytes, b"");
    t.extend_from_slice(&[0u8; 1024]);
    gzip(&t)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        // In memory where the machine offers it: thousands of small files.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join("outside")).unwrap();
        std::fs::write(root.join("outside/canary"), b"canary").unwrap();
        Sandbox { _dir: dir, root }
    }
    fn outside(&self) -> String {
        self.root.join("outside").display().to_string()
    }
}

/// A random archive built from hostile and ordinary members, in the
/// sandbox's terms (absolute names point into its `outside` directory).
fn archive(g: &mut Gen, sb: &Sandbox) -> Vec<u8> {
    let outside = sb.outside();
    let mut t = Vec::new();
    let root_img = g.some_bytes(3000);
    for _ in 0..1 + g.below(6) {
        match g.below(16) {
            0 => member(&mut t, b"stemcell.MF", b'0', MANIFEST.as_bytes(), b""),
            1 => member(&mut t, b"image", b'0', &image_of(&root_img), b""),
            2 => member(&mut t, b"root.img", b'0', &root_img, b""),
            3 => member(
                &mut t,
                format!("{outside}/abs-escape").as_bytes(),
                b'0',
                b"x",
                b"",
            ),
            4 => member(
                &mut t,
                *g.pick(&[
                    &b"../outside/dotdot-escape"[..],
                    b"a/../../outside/dotdot2",
                    b"./../outside/x",
                ]),
                b'0',
                b"x",
                b"",
            ),
            5 => {
                let target = format!("{outside}");
                let name: &[u8] = *g.pick(&[&b"link"[..], b"image", b"root.img", b"stemcell.MF"]);
                member(
                    &mut t,
                    name,
                    b'2',
                    b"",
                    *g.pick(&[target.as_bytes(), b"../outside", b"/etc/passwd"]),
                );
                member(&mut t, b"link/through-symlink", b'0', b"x", b"");
            }
            6 => {
                let target = format!("{outside}/canary");
                let name: &[u8] = *g.pick(&[&b"hard"[..], b"image", b"root.img"]);
                member(
                    &mut t,
                    name,
                    b'1',
                    b"",
                    *g.pick(&[target.as_bytes(), b"../outside/canary", b"stemcell.MF"]),
                );
            }
            7 => member(
                &mut t,
                *g.pick(&[&b"dev"[..], b"root.img"]),
                *g.pick(&[b'3', b'4', b'6']),
                b"",
                b"",
            ),
            8 => member(
                &mut t,
                *g.pick(&[&b"dir/"[..], b"./", b"image/"]),
                b'5',
                b"",
                b"",
            ),
            9 => {
                let long = format!("{}/root.img", "d".repeat(150));
                member(&mut t, long.as_bytes(), b'0', &root_img, b"");
            }
            10 => {
                let path = format!("{outside}/pax-escape");
                let path = g
                    .pick(&[
                        path.as_str(),
                        "../outside/pax-escape",
                        "root.img",
                        "stemcell.MF",
                    ])
                    .to_string();
                pax(&mut t, &[("path", &path)]);
                member(&mut t, b"innocent", b'0', MANIFEST.as_bytes(), b"");
            }
            11 => {
                let size = g.pick(&["0", "99999999999999", "-1", "abc"]).to_string();
                pax(&mut t, &[("size", &size)]);
                member(&mut t, b"root.img", b'0', &root_img, b"");
            }
            12 => {
                // A huge pax header: the reader must not keep it in memory.
                let big = "p".repeat(1 << 21);
                pax(&mut t, &[("comment", &big)]);
                member(&mut t, b"stemcell.MF", b'0', MANIFEST.as_bytes(), b"");
            }
            13 => {
                let real = *g.pick(&[4096u64, 1 << 26, 0]);
                sparse(
                    &mut t,
                    *g.pick(&[&b"root.img"[..], b"sparse"]),
                    real,
                    &g.bytes(512),
                );
            }
            14 => {
                // A size field far beyond the data that follows.
                t.extend_from_slice(&header(
                    *g.pick(&[&b"root.img"[..], b"stemcell.MF", b"big"]),
                    b'0',
                    *g.pick(&[1u64 << 40, u64::MAX / 2, 8u64.pow(11)]),
                    b"",
                    true,
                ));
                t.extend_from_slice(&g.some_bytes(2000));
            }
            _ => member(&mut t, b"packages.txt", b'0', &g.some_bytes(1000), b""),
        }
    }
    if !g.one_in(4) {
        t.extend_from_slice(&[0u8; 1024]);
    }
    match g.below(4) {
        0 => t,
        1 => {
            let cut = g.below(t.len() + 1);
            let mut z = gzip(&t[..cut]);
            z.extend_from_slice(&gzip(&t[cut..]));
            z
        }
        _ => gzip(&t),
    }
}

/// Reads everything a reader offers through every entry point of the crate,
/// and checks what `unpack` left in the sandbox.
fn check_archive(sb: &Sandbox, bytes: &[u8]) -> Verdict {
    let tgz = sb.root.join("in.tgz");
    std::fs::write(&tgz, bytes).unwrap();
    let dest = sb.root.join("dest");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir(&dest).unwrap();

    let mut label = String::new();
    let m = stemcell::read_manifest(&tgz);
    label.push_str(&outcome(m.as_ref().map(|_| ())));
    let mut counted = Counter(0);
    let s = stemcell::stream_root_img(&tgz, &mut counted);
    if let Ok(n) = &s {
        if *n != counted.0 {
            return Err(format!(
                "stream_root_img said {n} bytes, wrote {}",
                counted.0
            ));
        }
    }
    label.push_str(&outcome(s.as_ref().map(|_| ())));
    let size = stemcell::root_img_size(&tgz);
    label.push_str(&outcome(size.as_ref().map(|_| ())));
    let u = stemcell::unpack(&tgz, &dest);
    label.push_str(&outcome(u.as_ref().map(|_| ())));

    // Nothing but in.tgz, dest/ and the canary in the sandbox.
    let canary = std::fs::read(sb.root.join("outside/canary")).unwrap_or_default();
    if canary != b"canary" {
        return Err("the canary outside the destination was changed".into());
    }
    for e in std::fs::read_dir(sb.root.join("outside")).unwrap() {
        let name = e.unwrap().file_name();
        if name != "canary" {
            return Err(format!("{name:?} was written outside the destination"));
        }
    }
    for e in std::fs::read_dir(&sb.root).unwrap() {
        let name = e.unwrap().file_name();
        if !["in.tgz", "dest", "outside"].contains(&name.to_str().unwrap_or("")) {
            return Err(format!("{name:?} was written beside the destination"));
        }
    }
    if let Some(link) = links_in(&dest) {
        return Err(format!("unpack made a link: {}", link.display()));
    }
    if let Ok(u) = &u {
        if !u.image.starts_with(&dest) {
            return Err(format!(
                "image outside the destination: {}",
                u.image.display()
            ));
        }
    }
    Ok(label)
}

fn outcome<T>(r: Result<T, &stemcell::StemcellError>) -> String {
    match r {
        Ok(_) => "ok;".into(),
        Err(e) => format!(
            "{};",
            fuzz::label(
                &e.to_string()
                    .replace(&*std::env::temp_dir().to_string_lossy(), "")
            )
        ),
    }
}

fn links_in(dir: &Path) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let meta = std::fs::symlink_metadata(e.path()).ok()?;
        if meta.file_type().is_symlink() {
            return Some(e.path());
        }
        if meta.is_dir() {
            if let Some(p) = links_in(&e.path()) {
                return Some(p);
            }
        }
        if meta.nlink() > 1 && meta.is_file() {
            return Some(e.path());
        }
    }
    None
}

use std::os::unix::fs::MetadataExt;

/// Counts the bytes written, keeping none (a huge sparse member must not
/// fill the test's memory).
struct Counter(u64);
impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        if self.0 > 1 << 32 {
            return Err(std::io::Error::other("over 4 GiB written"));
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/tarball")
}

#[test]
fn fuzz_tarball_archives() {
    let sb = Sandbox::new();
    let mut g = Gen::new(11);
    let seeds: Vec<Vec<u8>> = (0..24).map(|_| archive(&mut g, &sb)).collect();
    let report = fuzz::run(
        "tarball",
        250,
        &regressions(),
        seeds,
        |g, base, other| match g.below(3) {
            0 => archive(g, &sb),
            _ => fuzz::mutate_bytes(g, base, other),
        },
        |input| check_archive(&sb, input),
    );
    assert!(report.outcomes > 5, "{report}");
}

/// A good stemcell cut at every offset: every entry point errs or, having
/// read all it needs, gives exactly the right answer; never a short image.
#[test]
fn fuzz_tarball_truncated_at_every_offset() {
    let sb = Sandbox::new();
    let mut g = Gen::new(5);
    let root_img = g.bytes(300);
    let inner = image_of(&root_img);
    for gz in [false, true] {
        for (name, tar) in [
            ("stemcell", {
                let mut t = Vec::new();
                member(&mut t, b"stemcell.MF", b'0', MANIFEST.as_bytes(), b"");
                member(&mut t, b"image", b'0', &inner, b"");
                t.extend_from_slice(&[0u8; 1024]);
                t
            }),
            ("image", {
                let mut t = Vec::new();
                member(&mut t, b"root.img", b'0', &root_img, b"");
                t.extend_from_slice(&[0u8; 1024]);
                t
            }),
        ] {
            let full = if gz { gzip(&tar) } else { tar.clone() };
            for cut in 0..full.len() {
                let path = sb.root.join("cut");
                std::fs::write(&path, &full[..cut]).unwrap();
                if name == "image" {
                    let mut out = Vec::new();
                    if let Ok(n) = stemcell::stream_root_img(&path, &mut out) {
                        assert_eq!(
                            out, root_img,
                            "gz={gz} cut at {cut}: a short image read as whole ({n} bytes)"
                        );
                    }
                } else {
                    if let Ok(m) = stemcell::read_manifest(&path) {
                        assert_eq!(m.name, "fuzz", "gz={gz} cut at {cut}");
                    }
                    let dest = sb.root.join("dest");
                    if std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_some()) {
                        let _ = std::fs::remove_dir_all(&dest);
                        std::fs::create_dir(&dest).unwrap();
                    }
                    if let Ok(u) = stemcell::unpack(&path, &dest) {
                        assert_eq!(
                            std::fs::read(&u.image).unwrap(),
                            inner,
                            "gz={gz} cut at {cut}: unpack kept a short image"
                        );
                    }
                }
            }
            eprintln!(
                "fuzz tarball_truncated: {name} (gzip {gz}) cut at all {} offsets",
                full.len()
            );
        }
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 64 MiB of pax header (a few hundred KiB gzipped) is refused without
/// being held in memory.
#[test]
fn huge_tar_metadata_is_refused_in_bounded_memory() {
    let sb = Sandbox::new();
    let mut t = Vec::new();
    pax(&mut t, &[("comment", &"p".repeat(64 << 20))]);
    member(&mut t, b"stemcell.MF", b'0', MANIFEST.as_bytes(), b"");
    t.extend_from_slice(&[0u8; 1024]);
    let z = gzip(&t);
    drop(t);
    let path = sb.root.join("bomb.tgz");
    std::fs::write(&path, &z).unwrap();
    drop(z);
    let before = peak_rss_kib();
    let e = stemcell::read_manifest(&path).unwrap_err();
    assert!(e.to_string().contains("tar metadata"), "{e}");
    let dest = sb.root.join("dest");
    std::fs::create_dir(&dest).unwrap();
    assert!(stemcell::unpack(&path, &dest).is_err());
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 64 << 10, "peak memory grew by {grown} KiB");
}

/// Found by the fuzzer against the first reader: a `root.img` that is a
/// symbolic link read as an empty, whole image.
#[test]
fn a_linked_root_img_is_not_an_image() {
    let sb = Sandbox::new();
    let mut t = Vec::new();
    member(&mut t, b"root.img", b'2', b"", b"/etc/passwd");
    t.extend_from_slice(&[0u8; 1024]);
    let path = sb.root.join("image");
    std::fs::write(&path, gzip(&t)).unwrap();
    let e = stemcell::stream_root_img(&path, &mut Vec::new()).unwrap_err();
    assert!(
        e.to_string().contains("root.img is not a regular file"),
        "{e}"
    );
    assert!(stemcell::root_img_size(&path).is_err());
}

/// Found by the fuzzer: a stemcell gzipped as two members (pigz, `cat a.gz
/// b.gz`) lost everything after the first.
#[test]
fn a_stemcell_in_two_gzip_members_reads_whole() {
    let sb = Sandbox::new();
    let root_img = Gen::new(3).bytes(5000);
    let mut t = Vec::new();
    member(&mut t, b"root.img", b'0', &root_img, b"");
    t.extend_from_slice(&[0u8; 1024]);
    let mut z = gzip(&t[..700]);
    z.extend_from_slice(&gzip(&t[700..]));
    let path = sb.root.join("image");
    std::fs::write(&path, z).unwrap();
    let mut out = Vec::new();
    stemcell::stream_root_img(&path, &mut out).unwrap();
    assert_eq!(out, root_img);
}

/// An oversize `stemcell.MF` is refused by name, not read into memory.
#[test]
fn an_oversize_manifest_is_refused() {
    let sb = Sandbox::new();
    let mut t = Vec::new();
    let big = format!("{MANIFEST}# {}\n", "x".repeat(2 << 20));
    member(&mut t, b"stemcell.MF", b'0', big.as_bytes(), b"");
    t.extend_from_slice(&[0u8; 1024]);
    let path = sb.root.join("stemcell.tgz");
    std::fs::write(&path, gzip(&t)).unwrap();
    let e = stemcell::read_manifest(&path).unwrap_err();
    assert!(
        e.to_string()
            .contains("stemcell.MF is not valid: it is larger than"),
        "{e}"
    );
}
