//! Acts out the commands a warden CPI runs in a container, on the
//! container's root directory, with the exit codes and messages the real
//! tools give: `cp`, `chown`, `chmod`, `sync`, `[ -f ]`, `mkdir`, `rm`,
//! `umount`, `sed -i`, `cat`, `echo`, and the agent's start command.
//! Anything else is "command not found" (127), never a silent success.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: i32,
    /// The process keeps running (the agent's `runsvdir-start`).
    pub long_running: bool,
}

/// A path inside the container, mapped under `root`; `..` cannot escape.
pub fn inside(root: &Path, path: &str) -> PathBuf {
    let mut out = root.to_path_buf();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir if out != root => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Runs `path args` as a process in the container rooted at `root`.
pub fn run(root: &Path, path: &str, args: &[String]) -> Outcome {
    let base = path.rsplit('/').next().unwrap_or(path);
    if matches!(base, "bash" | "sh") {
        if args.first().map(String::as_str) == Some("-c") {
            return script(root, args.get(1).map(String::as_str).unwrap_or(""));
        }
        return fail(
            2,
            format!("{base}: only -c scripts are supported by the fake\n"),
        );
    }
    let mut words = vec![path.to_owned()];
    words.extend(args.iter().cloned());
    command(root, &words, 1)
}

/// A `bash -c` script: lines (and `;`) run in order, `&&` stops at the
/// first failure; the status is the last command's.
fn script(root: &Path, text: &str) -> Outcome {
    let mut total = Outcome::default();
    for (n, line) in text.lines().enumerate() {
        for stmt in line.split(';') {
            if stmt.trim().is_empty() || stmt.trim_start().starts_with('#') {
                continue;
            }
            for part in stmt.split("&&") {
                let words = match words(part) {
                    Ok(w) => w,
                    Err(e) => {
                        total
                            .stderr
                            .extend(format!("bash: line {}: {e}\n", n + 1).as_bytes());
                        total.exit = 2;
                        break;
                    }
                };
                if words.is_empty() {
                    continue;
                }
                let out = command(root, &words, n + 1);
                total.stdout.extend(out.stdout);
                total.stderr.extend(out.stderr);
                total.exit = out.exit;
                if out.long_running {
                    total.long_running = true;
                    return total;
                }
                if out.exit != 0 {
                    break;
                }
            }
        }
    }
    total
}

/// Splits a command into words, honouring single and double quotes.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                have = true;
            }
            (None, c) if c.is_whitespace() => {
                if have || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("unexpected EOF while looking for matching quote".into());
    }
    if have || !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn ok() -> Outcome {
    Outcome::default()
}

fn fail(exit: i32, msg: String) -> Outcome {
    Outcome {
        stderr: msg.into_bytes(),
        exit,
        ..Outcome::default()
    }
}

/// Files the real container has bind-mounted from the host, which the
/// agent start script unmounts.
const GARDEN_MOUNTS: &[&str] = &["/etc/resolv.conf", "/etc/hosts", "/etc/hostname"];

fn command(root: &Path, w: &[String], line: usize) -> Outcome {
    let name = w[0].rsplit('/').next().unwrap_or(&w[0]).to_owned();
    let (flags, operands): (Vec<&String>, Vec<&String>) = w[1..]
        .iter()
        .partition(|a| a.starts_with('-') && a.len() > 1);
    let has = |f: char| flags.iter().any(|x| !x.starts_with("--") && x.contains(f));
    let p = |s: &str| inside(root, s);
    match name.as_str() {
        "sync" | "true" | ":" => ok(),
        "false" => fail(1, String::new()),
        "exec" | "env" => {
            // `exec env -i CMD…`: drop the wrappers and their flags.
            let rest: Vec<String> = w[1..]
                .iter()
                .skip_while(|a| a.starts_with('-') || *a == "env")
                .cloned()
                .collect();
            if rest.is_empty() {
                return ok();
            }
            command(root, &rest, line)
        }
        "runsvdir-start" => Outcome {
            long_running: true,
            ..ok()
        },
        "[" | "test" => {
            let args: Vec<&str> = w[1..]
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "]")
                .collect();
            let result = match args.as_slice() {
                ["-f", path] => p(path).is_file(),
                ["-d", path] => p(path).is_dir(),
                ["-e", path] => p(path).exists(),
                ["-s", path] => p(path).metadata().map(|m| m.len() > 0).unwrap_or(false),
                _ => return fail(2, format!("bash: line {line}: [: unsupported test\n")),
            };
            if result {
                ok()
            } else {
                fail(1, String::new())
            }
        }
        "cp" => {
            if operands.len() != 2 {
                return fail(1, "cp: missing file operand\n".into());
            }
            let (src, mut dst) = (p(operands[0]), p(operands[1]));
            if !src.exists() {
                return fail(
                    1,
                    format!(
                        "cp: cannot stat '{}': No such file or directory\n",
                        operands[0]
                    ),
                );
            }
            if dst.is_dir() {
                dst = dst.join(src.file_name().unwrap_or_default());
            }
            if src.is_dir() {
                if !has('r') && !has('a') && !has('R') {
                    return fail(
                        1,
                        format!(
                            "cp: -r not specified; omitting directory '{}'\n",
                            operands[0]
                        ),
                    );
                }
                return match copy_dir(&src, &dst) {
                    Ok(()) => ok(),
                    Err(e) => fail(1, format!("cp: {e}\n")),
                };
            }
            match std::fs::copy(&src, &dst) {
                Ok(_) => ok(),
                Err(e) => fail(
                    1,
                    format!(
                        "cp: cannot create regular file '{}': {}\n",
                        operands[1],
                        io_msg(&e)
                    ),
                ),
            }
        }
        "chown" | "chmod" => {
            if operands.len() < 2 {
                return fail(1, format!("{name}: missing operand\n"));
            }
            for f in &operands[1..] {
                if !p(f).exists() {
                    return fail(
                        1,
                        format!("{name}: cannot access '{f}': No such file or directory\n"),
                    );
                }
            }
            ok()
        }
        "mkdir" => {
            for d in &operands {
                let r = if has('p') {
                    std::fs::create_dir_all(p(d))
                } else {
                    std::fs::create_dir(p(d))
                };
                if let Err(e) = r {
                    return fail(
                        1,
                        format!("mkdir: cannot create directory '{d}': {}\n", io_msg(&e)),
                    );
                }
            }
            ok()
        }
        "rm" => {
            for f in &operands {
                let path = p(f);
                let r = if path.is_dir() && !path.is_symlink() {
                    if has('r') || has('R') {
                        std::fs::remove_dir_all(&path)
                    } else {
                        return fail(1, format!("rm: cannot remove '{f}': Is a directory\n"));
                    }
                } else {
                    std::fs::remove_file(&path)
                };
                match r {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && has('f') => {}
                    Err(e) => return fail(1, format!("rm: cannot remove '{f}': {}\n", io_msg(&e))),
                    Ok(()) => {}
                }
            }
            ok()
        }
        "umount" => match operands.first() {
            Some(t) if GARDEN_MOUNTS.contains(&t.as_str()) => ok(),
            Some(t) => fail(32, format!("umount: {t}: not mounted.\n")),
            None => fail(1, "umount: bad usage\n".into()),
        },
        "sed" => match operands.last() {
            Some(f) if p(f).is_file() => ok(),
            Some(f) => fail(
                2,
                format!("sed: can't read {f}: No such file or directory\n"),
            ),
            None => fail(1, "sed: no input files\n".into()),
        },
        "cat" => {
            let mut out = ok();
            for f in &operands {
                match std::fs::read(p(f)) {
                    Ok(b) => out.stdout.extend(b),
                    Err(e) => return fail(1, format!("cat: {f}: {}\n", io_msg(&e))),
                }
            }
            out
        }
        "echo" => Outcome {
            stdout: format!("{}\n", w[1..].join(" ")).into_bytes(),
            ..ok()
        },
        _ => fail(
            127,
            format!("bash: line {line}: {}: command not found\n", w[0]),
        ),
    }
}

fn io_msg(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory",
        std::io::ErrorKind::AlreadyExists => "File exists",
        std::io::ErrorKind::PermissionDenied => "Permission denied",
        _ => "Input/output error",
    }
}

fn copy_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let to = dst.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to)?;
        } else {
            std::fs::copy(e.path(), to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(root: &Path, s: &str) -> Outcome {
        run(root, "bash", &["-c".into(), s.into()])
    }

    #[test]
    fn acts_on_the_container_dir_with_real_exit_codes() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("tmp")).unwrap();
        assert_eq!(sh(r, "[ -f '/var/vcap/bosh/x.json' ]").exit, 1);
        assert_eq!(sh(r, "mkdir -p /var/vcap/bosh && echo hi").exit, 0);
        std::fs::write(r.join("var/vcap/bosh/x.json"), b"{}").unwrap();
        assert_eq!(sh(r, "sync").exit, 0);
        assert_eq!(sh(r, "[ -f '/var/vcap/bosh/x.json' ]").exit, 0);
        assert_eq!(
            sh(
                r,
                "cp /var/vcap/bosh/x.json /tmp/x-1.json && chown vcap:vcap /tmp/x-1.json"
            )
            .exit,
            0
        );
        assert_eq!(std::fs::read(r.join("tmp/x-1.json")).unwrap(), b"{}");
        let o = sh(r, "cp /nope /tmp/y && chown vcap:vcap /tmp/y");
        assert_eq!(o.exit, 1);
        assert!(String::from_utf8_lossy(&o.stderr).contains("cannot stat '/nope'"));
        assert_eq!(sh(r, "frobnicate").exit, 127);
        assert_eq!(sh(r, "rm -rf /var/vcap/bosh").exit, 0);
        assert!(!r.join("var/vcap/bosh").exists());
        assert_eq!(sh(r, "rm /var/vcap/bosh").exit, 1);
        assert_eq!(sh(r, "umount /var/vcap/store").exit, 32);
        let agent = sh(
            r,
            "umount /etc/resolv.conf\numount /etc/hosts\nexec env -i /usr/sbin/runsvdir-start",
        );
        assert!(agent.long_running);
        assert_eq!(
            sh(r, "cat /../../etc/passwd").exit,
            1,
            "paths cannot escape the container"
        );
    }
}
