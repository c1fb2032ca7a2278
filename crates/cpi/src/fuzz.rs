//! A small seeded fuzzer for the stable toolchain, shared by the fuzz tests
//! of every crate: a generator, mutators for bytes and JSON, and a runner
//! that replays the checked-in regression inputs, then mutates a corpus for
//! a bounded number of executions (or seconds), keeping every input that
//! gives an outcome not seen before (a cheap stand-in for coverage).
//!
//! Not used by any CPI at run time. `make test` runs each target briefly;
//! `make fuzz` sets `BOSH_FUZZ_SECONDS` (or `BOSH_FUZZ_ITERATIONS`) and
//! `BOSH_FUZZ_SEED` to run the same targets for longer.

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A deterministic generator (splitmix64): the same seed, the same inputs.
#[derive(Clone, Debug)]
pub struct Gen {
    state: u64,
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    pub fn u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.u64() % n as u64) as usize
        }
    }

    /// True once in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A length, usually small, sometimes at a boundary, rarely large.
    pub fn len(&mut self, max: usize) -> usize {
        match self.below(8) {
            0 => 0,
            1 => max,
            2..=5 => self.below(16.min(max) + 1),
            _ => self.below(max + 1),
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u64() as u8).collect()
    }

    /// Random bytes of a [`Gen::len`] length.
    pub fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.len(max);
        self.bytes(n)
    }

    /// A string that stresses parsers: empty, unicode, control characters,
    /// path tricks, URL tricks, numbers as text, or long.
    pub fn string(&mut self) -> String {
        const TRICKY: &[&str] = &[
            "",
            " ",
            "\u{0}",
            "\n",
            "é",
            "\u{202e}",
            "💥",
            "..",
            "../../etc/passwd",
            "/",
            "/dev/null",
            "-1",
            "0",
            "1e400",
            "NaN",
            "true",
            "null",
            "http://",
            "https://u:p@[::1",
            "https://user:pass@127.0.0.1:9/x?y#z",
            "%",
            "%00",
            "${HOME}",
            "\\",
            "\"",
            "{}",
            "[",
        ];
        match self.below(6) {
            0..=2 => self.pick(TRICKY).to_string(),
            3 => {
                let n = self.len(40);
                (0..n)
                    .map(|_| char::from_u32(self.below(0x3000) as u32).unwrap_or('?'))
                    .collect()
            }
            4 => "x".repeat(self.len(70_000)),
            _ => format!("{}{}", self.pick(TRICKY), self.u64()),
        }
    }

    /// Any JSON value, nested at most `depth` levels.
    pub fn json(&mut self, depth: usize) -> Value {
        let kinds = if depth == 0 { 6 } else { 8 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(self.one_in(2)),
            2 => Value::from(*self.pick(&[0i64, -1, 1, i64::MAX, i64::MIN, 65_536, 4_294_967_296])),
            3 => Value::from(*self.pick(&[0.5f64, -0.0, 1e300, -1e-300])),
            4 => Value::from(self.u64()),
            5 => Value::String(self.string()),
            6 => Value::Array((0..self.len(4)).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let mut m = Map::new();
                for _ in 0..self.len(4) {
                    m.insert(self.string(), self.json(depth - 1));
                }
                Value::Object(m)
            }
        }
    }
}

/// What a JSON mutation did: the path of the key it touched and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// Object keys and array indexes (as text) from the root.
    pub path: Vec<String>,
    pub kind: MutationKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutationKind {
    /// The key was removed.
    Removed,
    /// The value was replaced by one of another JSON type.
    WrongType,
    /// The value was replaced by a very long string.
    Huge,
    /// The value was replaced by an arbitrary one (maybe the same type).
    Replaced,
    /// A key was added next to the existing ones.
    Added,
}

impl Mutation {
    /// The last object key on the path: what an error about it should name.
    pub fn key(&self) -> Option<&str> {
        self.path
            .iter()
            .rev()
            .find(|k| k.parse::<usize>().is_err())
            .map(String::as_str)
    }
}

impl std::fmt::Display for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} at {}", self.kind, self.path.join("."))
    }
}

fn type_of(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Every path to a value inside `v` (not the root itself).
pub fn paths(v: &Value) -> Vec<Vec<String>> {
    fn walk(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    at.push(k.clone());
                    out.push(at.clone());
                    walk(x, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    at.push(i.to_string());
                    out.push(at.clone());
                    walk(x, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn get_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for k in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(k)?,
            Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// One structural mutation of `doc`: a key removed, a value of the wrong
/// type, a huge string, an arbitrary value, or an extra key.
pub fn mutate_json(g: &mut Gen, doc: &Value) -> (Value, Mutation) {
    let mut out = doc.clone();
    let all = paths(doc);
    if all.is_empty() {
        let v = g.json(3);
        return (
            v,
            Mutation {
                path: vec![],
                kind: MutationKind::Replaced,
            },
        );
    }
    let path = g.pick(&all).clone();
    let kind = *g.pick(&[
        MutationKind::Removed,
        MutationKind::WrongType,
        MutationKind::WrongType,
        MutationKind::Huge,
        MutationKind::Replaced,
        MutationKind::Added,
    ]);
    let (parent_path, last) = path.split_at(path.len() - 1);
    let last = &last[0];
    match kind {
        MutationKind::Removed => {
            if let Some(parent) = get_mut(&mut out, parent_path) {
                match parent {
                    Value::Object(m) => {
                        m.remove(last);
                    }
                    Value::Array(a) => {
                        if let Ok(i) = last.parse::<usize>() {
                            if i < a.len() {
                                a.remove(i);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        MutationKind::WrongType => {
            if let Some(target) = get_mut(&mut out, &path) {
                let was = type_of(target);
                let mut v = g.json(2);
                while type_of(&v) == was || (was == 2 && matches!(v, Value::Number(_))) {
                    v = g.json(2);
                }
                *target = v;
            }
        }
        MutationKind::Huge => {
            if let Some(target) = get_mut(&mut out, &path) {
                *target = Value::String("A".repeat(1 << (16 + g.below(5))));
            }
        }
        MutationKind::Replaced => {
            if let Some(target) = get_mut(&mut out, &path) {
                *target = g.json(3);
            }
        }
        MutationKind::Added => {
            if let Some(Value::Object(m)) = get_mut(&mut out, parent_path) {
                m.insert(format!("fuzz_{}", g.string()), g.json(2));
            }
        }
    }
    (out, Mutation { path, kind })
}

/// One byte-level mutation: flips, inserts, deletions, truncation, a copied
/// chunk, an interesting value, or a splice with `other`.
pub fn mutate_bytes(g: &mut Gen, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + g.below(4) {
        let n = v.len();
        match g.below(9) {
            0 if n > 0 => {
                let i = g.below(n);
                v[i] ^= 1 << g.below(8);
            }
            1 => {
                let i = g.below(n + 1);
                let k = 1 + g.below(8);
                let b = g.bytes(k);
                v.splice(i..i, b);
            }
            2 if n > 0 => {
                let i = g.below(n);
                let len = 1 + g.below((n - i).min(64));
                v.drain(i..i + len);
            }
            3 => v.truncate(g.below(n + 1)),
            4 if n > 0 => {
                let i = g.below(n);
                let len = 1 + g.below((n - i).min(256));
                let chunk = v[i..i + len].to_vec();
                let at = g.below(n + 1);
                v.splice(at..at, chunk);
            }
            5 if n > 0 => {
                let i = g.below(n);
                v[i] = *g.pick(&[
                    0u8, 0xff, 0x7f, 0x80, b'0', b'9', b'"', b'{', b'[', b'/', b'.',
                ]);
            }
            6 if !other.is_empty() => {
                let cut = g.below(n + 1);
                let from = g.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            7 if n > 0 => {
                let i = g.below(n);
                let len = 1 + g.below((n - i).min(8));
                let b = *g.pick(&[0u8, 0xff, b'7']);
                v[i..i + len].iter_mut().for_each(|x| *x = b);
            }
            _ => {
                let i = g.below(n + 1);
                let tok: &[u8] = g
                    .pick(&[
                        "\"A\"",
                        "null",
                        "[]",
                        "{}",
                        "-0",
                        "1e999",
                        "\\u0000",
                        "\"\\ud800\"",
                        ",",
                        ":",
                    ])
                    .as_bytes();
                v.splice(i..i, tok.iter().copied());
            }
        }
    }
    v
}

/// How long a target runs: `BOSH_FUZZ_SECONDS` (a duration per target) or
/// `BOSH_FUZZ_ITERATIONS`, else the target's own small default.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub iterations: u64,
    pub seconds: Option<f64>,
    pub seed: u64,
}

impl Budget {
    pub fn from_env(default_iterations: u64) -> Budget {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
        let seconds = var("BOSH_FUZZ_SECONDS").and_then(|s| s.trim().parse::<f64>().ok());
        let iterations = var("BOSH_FUZZ_ITERATIONS")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(if seconds.is_some() {
                u64::MAX
            } else {
                default_iterations
            });
        let seed = var("BOSH_FUZZ_SEED")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0x5eed_b05c);
        Budget {
            iterations,
            seconds,
            seed,
        }
    }
}

/// A fuzz target's verdict on one input: an outcome label (inputs giving a
/// label not seen before join the corpus), or a failure of the property.
pub type Verdict = Result<String, String>;

/// The largest input a mutation may produce, and the largest kept in the corpus.
pub const MAX_INPUT: usize = 4 << 20;
pub const MAX_CORPUS_INPUT: usize = 64 << 10;

/// The figures `make fuzz` prints.
#[derive(Clone, Debug)]
pub struct Report {
    pub target: String,
    pub executions: u64,
    pub regressions: usize,
    pub seeds: usize,
    pub corpus: usize,
    pub outcomes: usize,
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {}: {} executions ({} regression inputs), corpus {} ({} seeds), {} distinct outcomes, {:.1} s",
            self.target,
            self.executions,
            self.regressions,
            self.corpus,
            self.seeds,
            self.outcomes,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The regression inputs of a target: every file in `dir` (may not exist).
pub fn regression_inputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok().map(|b| (e.path(), b)))
        .collect();
    out.sort();
    out
}

/// Where a failing input is written, for checking in under `tests/regressions/`.
fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join("bosh-fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{target}-{h:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// Runs `check` over the regression inputs in `regressions`, the `seeds`,
/// then mutations of the growing corpus made by `mutate`, within the
/// budget. Panics (failing the test) on the first input whose check fails
/// or panics, naming the saved input. Prints and answers the figures.
pub fn run(
    target: &str,
    default_iterations: u64,
    regressions: &Path,
    seeds: Vec<Vec<u8>>,
    mut mutate: impl FnMut(&mut Gen, &[u8], &[u8]) -> Vec<u8>,
    mut check: impl FnMut(&[u8]) -> Verdict,
) -> Report {
    let budget = Budget::from_env(default_iterations);
    let started = Instant::now();
    let mut g = Gen::new(
        budget.seed
            ^ target
                .bytes()
                .fold(0u64, |h, b| h.rotate_left(5) ^ b as u64),
    );
    let mut outcomes = BTreeSet::new();
    let mut executions = 0u64;
    let mut one = |input: &[u8], origin: &str, outcomes: &mut BTreeSet<String>| -> bool {
        let verdict =
            std::panic::catch_unwind(AssertUnwindSafe(|| check(input))).unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(format!("panicked: {msg}"))
            });
        match verdict {
            Ok(label) => outcomes.insert(label),
            Err(why) => {
                let saved = save_failure(target, input);
                panic!(
                    "fuzz {target}: {origin} failed: {why}\n  input ({} bytes) saved to {}; \
                     fix it, then check it in under the target's tests/regressions/ directory",
                    input.len(),
                    saved.display()
                );
            }
        }
    };
    let regression = regression_inputs(regressions);
    for (path, input) in &regression {
        one(
            input,
            &format!("regression input {}", path.display()),
            &mut outcomes,
        );
        executions += 1;
    }
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    for s in &seeds {
        one(s, "seed", &mut outcomes);
        executions += 1;
        corpus.push(s.clone());
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let deadline = budget.seconds.map(|s| started + Duration::from_secs_f64(s));
    let mut done = 0u64;
    while done < budget.iterations && deadline.is_none_or(|d| Instant::now() < d) {
        let base = corpus[g.below(corpus.len())].clone();
        let other = corpus[g.below(corpus.len())].clone();
        let mut input = mutate(&mut g, &base, &other);
        // Inputs stay small enough for many executions a second; size
        // limits are exercised by the mutators' huge values, not by growth.
        input.truncate(MAX_INPUT);
        if one(
            &input,
            &format!("mutation {done} (seed {})", budget.seed),
            &mut outcomes,
        ) && input.len() <= MAX_CORPUS_INPUT
        {
            corpus.push(input);
        }
        executions += 1;
        done += 1;
    }
    let report = Report {
        target: target.to_owned(),
        executions,
        regressions: regression.len(),
        seeds: seeds.len(),
        corpus: corpus.len(),
        outcomes: outcomes.len(),
        elapsed: started.elapsed(),
    };
    eprintln!("{report}");
    report
}

/// An outcome label from an error message: digits and quoted text dropped,
/// so that "a byte at 17" and "a byte at 18" count as one outcome.
pub fn label(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.chars().take(160) {
        match c {
            '`' | '\'' | '"' => {
                quoted = !quoted;
                out.push('_');
            }
            _ if quoted => {}
            c if c.is_ascii_digit() => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let doc = json!({"a": {"b": [1, 2, {"c": "d"}]}, "e": true});
        let mut g1 = Gen::new(7);
        let mut g2 = Gen::new(7);
        for _ in 0..50 {
            assert_eq!(mutate_json(&mut g1, &doc), mutate_json(&mut g2, &doc));
        }
    }

    #[test]
    fn wrong_type_changes_the_type_and_names_the_key() {
        let doc = json!({"a": {"b": "text"}});
        let mut g = Gen::new(1);
        let mut seen = false;
        for _ in 0..200 {
            let (v, m) = mutate_json(&mut g, &doc);
            if m.kind == MutationKind::WrongType && m.path == ["a", "b"] {
                assert!(!v["a"]["b"].is_string(), "{v}");
                assert_eq!(m.key(), Some("b"));
                seen = true;
            }
        }
        assert!(seen);
    }

    #[test]
    fn a_failing_check_fails_the_run() {
        let r = std::panic::catch_unwind(|| {
            run(
                "self-test",
                100,
                Path::new("/nonexistent"),
                vec![b"ok".to_vec()],
                |g, b, o| mutate_bytes(g, b, o),
                |input| {
                    if input.len() > 3 {
                        Err("too long".into())
                    } else {
                        Ok(String::from_utf8_lossy(input).into_owned())
                    }
                },
            )
        });
        assert!(r.is_err());
    }

    #[test]
    fn labels_ignore_numbers_and_quoted_values() {
        assert_eq!(
            label("expected `,` at line 1 column 17"),
            label("expected `}` at line 3 column 2")
        );
    }
}

/// Fuzzes a CPI binary's config loading: mutations of its valid job-shaped
/// `config` (a key removed, a wrong type, a huge string, a new key, or
/// mangled bytes) are written to a file and the binary is asked to `ping`,
/// which loads the config and builds the cloud without touching it. Each
/// call must exit 0 with one well-formed response; an error must be a
/// `CpiError` that names the mutated key (or the file, for broken JSON),
/// and must not echo a huge value back. `args` are the binary's arguments
/// with `{config}` where the config path goes.
pub fn config_target(
    target: &str,
    binary: &Path,
    args: &[String],
    config: &Value,
    regressions: &Path,
    default_iterations: u64,
) -> Report {
    config_target_with(
        target,
        binary,
        args,
        config,
        regressions,
        default_iterations,
        false,
    )
}

/// [`config_target`], accepting an error that names the mutated key's
/// parent object instead of the key (`parent_ok`): for a config whose
/// blocks use `#[serde(flatten)]`, where serde loses the inner key path.
pub fn config_target_with(
    target: &str,
    binary: &Path,
    args: &[String],
    config: &Value,
    regressions: &Path,
    default_iterations: u64,
    parent_ok: bool,
) -> Report {
    let dir = std::env::temp_dir().join(format!("bosh-fuzz-{target}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("cpi.json");
    let seed = serde_json::to_vec(config).expect("a config serialises");
    let mutations: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Mutation>> =
        Default::default();
    let request = br#"{"method":"ping","arguments":[],"context":{"director_uuid":"fuzz","request_id":"fuzz-1"},"api_version":2}"#;
    let report = run(
        target,
        default_iterations,
        regressions,
        vec![seed.clone()],
        |g, base, other| {
            let doc = serde_json::from_slice::<Value>(base).unwrap_or_else(|_| config.clone());
            if g.one_in(8) {
                return mutate_bytes(g, &seed, other);
            }
            // Mostly one mutation of the valid config, so the key at fault is known.
            // (Mutations of mutations explore further, without a known key.)
            let pristine = !g.one_in(4);
            let start = if pristine { config.clone() } else { doc };
            let (v, m) = mutate_json(g, &start);
            let bytes = serde_json::to_vec(&v).expect("serialises");
            if pristine {
                mutations.borrow_mut().insert(bytes.clone(), m);
            }
            bytes
        },
        |input| {
            std::fs::write(&path, input).map_err(|e| e.to_string())?;
            let args: Vec<String> = args
                .iter()
                .map(|a| a.replace("{config}", &path.display().to_string()))
                .collect();
            let out = run_process(binary, &args, request)?;
            let m = mutations.borrow_mut().remove(input);
            judge_config(input, &out, m.as_ref(), parent_ok)
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    report
}

/// [`config_target_with`] for the config a test environment wrote: `args`
/// are the binary's arguments as the environment runs it, one of which is
/// the config file's path (`PATH.json` or `--config=PATH.json`); that file
/// is the seed, and its path becomes `{config}`.
pub fn written_config_target(
    target: &str,
    binary: &Path,
    args: &[String],
    regressions: &Path,
    default_iterations: u64,
    parent_ok: bool,
) -> Report {
    let config_path = args
        .iter()
        .find_map(|a| a.split('=').next_back().filter(|p| p.ends_with(".json")))
        .expect("the config path is an argument")
        .to_owned();
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace(&config_path, "{config}"))
        .collect();
    config_target_with(
        target,
        binary,
        &args,
        &config,
        regressions,
        default_iterations,
        parent_ok,
    )
}

fn run_process(binary: &Path, args: &[String], stdin: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(binary)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let _ = child.stdin.take().expect("piped").write_all(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.code() != Some(0) {
        return Err(format!("exit status {:?}", out.status));
    }
    Ok(out.stdout)
}

fn judge_config(
    input: &[u8],
    stdout: &[u8],
    mutation: Option<&Mutation>,
    parent_ok: bool,
) -> Verdict {
    let text = std::str::from_utf8(stdout).map_err(|e| format!("stdout is not UTF-8: {e}"))?;
    if text.lines().count() != 1 {
        return Err(format!("stdout is not one line: {text:?}"));
    }
    let r: Value = serde_json::from_str(text).map_err(|e| format!("stdout is not JSON: {e}"))?;
    if !r["log"].is_string() {
        return Err("log is not a string".into());
    }
    let e = &r["error"];
    if e.is_null() {
        return if r["result"] == "pong" {
            Ok("pong".into())
        } else {
            Err(format!("ping answered {}", r["result"]))
        };
    }
    let kind = e["type"].as_str().unwrap_or("");
    let message = e["message"].as_str().unwrap_or("");
    if !e["ok_to_retry"].is_boolean() || message.is_empty() {
        return Err(format!("malformed error: {e}"));
    }
    if kind != "Bosh::Clouds::CpiError" {
        return Err(format!("a bad config answered {kind}: {message}"));
    }
    if message.starts_with("internal error") {
        return Err(format!("a panic was caught: {message}"));
    }
    if message.len() > 4096 {
        return Err(format!(
            "the error echoes {} bytes: {}…",
            message.len(),
            &message[..message
                .char_indices()
                .nth(200)
                .map_or(message.len(), |(i, _)| i)]
        ));
    }
    if serde_json::from_slice::<Value>(input).is_err() {
        if !message.contains("cpi.json") {
            return Err(format!(
                "broken JSON, but the error does not name the file: {message}"
            ));
        }
    } else if let Some(key) = mutation.and_then(|m| m.key()) {
        let names = |k: &str| message.to_lowercase().contains(&k.to_lowercase());
        // The object holding the key (array indexes skipped).
        let parent = mutation.and_then(|m| {
            let keys: Vec<&String> = m
                .path
                .iter()
                .filter(|k| k.parse::<usize>().is_err())
                .collect();
            keys.len().checked_sub(2).map(|i| keys[i])
        });
        if !names(key) && !(parent_ok && parent.is_some_and(|p| names(p))) {
            return Err(format!(
                "the error does not name '{key}' ({}): {message}",
                mutation.map(|m| m.to_string()).unwrap_or_default()
            ));
        }
    }
    Ok(format!("{kind} {}", label(message)))
}
