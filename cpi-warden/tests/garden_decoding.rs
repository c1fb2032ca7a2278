//! The Garden client against hostile answers (issue 17's fuzzing, as
//! generated property tests on the stable toolchain): valid answers of each
//! route truncated at every kind of point, bytes flipped, JSON values of the
//! wrong type, huge lines and bodies, absurd Content-Lengths and chunk
//! sizes. Every call must come back (no hang), with a result or an error,
//! never a panic or an unbounded allocation. A seed reproduces a run:
//! `GARDEN_FUZZ_SEED=N GARDEN_FUZZ_CASES=M cargo test -p cpi-warden --test garden_decoding`.

use cpi::wait::Backoff;
use cpi_warden::garden::{Endpoint, Garden, ProcessSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A server answering every connection with the next scripted bytes (the
/// last one again when they run out), then closing it.
struct Scripted {
    addr: String,
    answers: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Scripted {
    fn start() -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let answers: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let a = answers.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let a = a.clone();
                std::thread::spawn(move || {
                    // The request's head (and a small body): enough to answer.
                    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = [0u8; 65536];
                    let _ = s.read(&mut buf);
                    let next = {
                        let mut q = a.lock().unwrap();
                        if q.len() > 1 {
                            q.remove(0)
                        } else {
                            q.first().cloned().unwrap_or_default()
                        }
                    };
                    let _ = s.write_all(&next);
                });
            }
        });
        Scripted { addr, answers }
    }

    fn script(&self, answers: Vec<Vec<u8>>) {
        *self.answers.lock().unwrap() = answers;
    }
}

fn sized(status: u16, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

fn hijacked(status: u16, raw: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    v.extend_from_slice(raw);
    v
}

fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
    b.into_inner().unwrap()
}

/// Replaces one JSON value somewhere in `v` by a value of another type.
fn wrong_type(v: &mut Value, rng: &mut StdRng) {
    let others = [
        json!(null),
        json!(7),
        json!(-1),
        json!(1e300),
        json!("s"),
        json!([1, "x", null]),
        json!({"k": {"deep": [[]]}}),
        json!(true),
    ];
    let pick = others[rng.random_range(0..others.len())].clone();
    match v {
        Value::Object(m) if !m.is_empty() => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[rng.random_range(0..keys.len())];
            if rng.random_bool(0.5) {
                wrong_type(m.get_mut(k).unwrap(), rng);
            } else {
                m.insert(k.clone(), pick);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let i = rng.random_range(0..a.len());
            wrong_type(&mut a[i], rng);
        }
        other => *other = pick,
    }
}

/// One mutation of a valid answer.
fn mutate(answer: &[u8], json_body: Option<&Value>, rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..9) {
        0 => answer[..rng.random_range(0..=answer.len())].to_vec(),
        1 => {
            let mut a = answer.to_vec();
            for _ in 0..rng.random_range(1..4) {
                if a.is_empty() {
                    break;
                }
                let i = rng.random_range(0..a.len());
                a[i] = rng.random();
            }
            a
        }
        2 => match json_body {
            Some(b) => {
                let mut b = b.clone();
                wrong_type(&mut b, rng);
                sized(200, b.to_string().as_bytes())
            }
            None => answer.to_vec(),
        },
        // A huge line: the head never ends.
        3 => {
            let mut a = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
            a.extend(std::iter::repeat_n(b'a', 3 << 20));
            a
        }
        4 => b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n\r\n{}".to_vec(),
        5 => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc".to_vec()
        }
        6 => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}{}\r\nzz\r\n".to_vec(),
        7 => {
            // A body far bigger than any answer, sent to EOF.
            let mut a = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
            a.extend(std::iter::repeat_n(b'[', 1 << 20));
            a
        }
        _ => {
            let mut a = answer.to_vec();
            let at = rng.random_range(0..=a.len());
            let junk: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
            a.splice(at..at, junk);
            a
        }
    }
}

enum Call {
    List,
    Info,
    Property,
    StreamOut,
    Run,
    RunStatus,
}

fn valid(call: &Call) -> (Vec<Vec<u8>>, Option<Value>) {
    let info = json!({"State": "active", "ContainerIP": "10.0.0.2", "Properties": {"a": "b"},
                      "ProcessIDs": ["p"], "MappedPorts": [{"HostPort": 1, "ContainerPort": 2}]});
    match call {
        Call::List => {
            let b = json!({"Handles": ["a", "b"]});
            (vec![sized(200, b.to_string().as_bytes())], Some(b))
        }
        Call::Info => (vec![sized(200, info.to_string().as_bytes())], Some(info)),
        Call::Property => {
            let b = json!({"Type": "ContainerNotFoundError", "Message": "m", "Handle": "h"});
            (vec![sized(404, b.to_string().as_bytes())], Some(b))
        }
        Call::StreamOut => (vec![sized(200, &tar_of("f.json", b"{\"a\":1}"))], None),
        Call::Run | Call::RunStatus => (
            vec![
                hijacked(
                    201,
                    b"{\"process_id\":\"p1\",\"stream_id\":\"1\"}\n{\"process_id\":\"p1\",\"exit_status\":3}\n",
                ),
                hijacked(200, b"out"),
                hijacked(200, b"err"),
            ],
            None,
        ),
    }
}

async fn exercise(g: &Garden, call: &Call) -> Result<String, cpi::Error> {
    match call {
        Call::List => g.list(&BTreeMap::new()).await.map(|v| format!("{v:?}")),
        Call::Info => g.info("h").await.map(|v| format!("{v:?}")),
        Call::Property => g.set_property("h", "k", "v").await.map(|_| String::new()),
        Call::StreamOut => g.stream_out("h", "/f").await.map(|v| v.len().to_string()),
        Call::Run => g
            .run("h", &ProcessSpec::script("true"))
            .await
            .map(|r| format!("{} {:?}", r.exit_status, r.stdout)),
        Call::RunStatus => g
            .run_status("h", &ProcessSpec::script("true"))
            .await
            .map(|s| s.to_string()),
    }
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn hostile_answers_give_errors_not_panics_or_hangs() {
    let server = Scripted::start();
    let garden = Garden::new(Endpoint::Tcp(server.addr.clone())).with_backoff(
        Backoff::new(
            Duration::from_millis(1),
            Duration::from_millis(2),
            Duration::from_secs(2),
        )
        .attempts(2),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let seed = env_or("GARDEN_FUZZ_SEED", 1207);
    let cases = env_or("GARDEN_FUZZ_CASES", 240);
    let mut rng = StdRng::seed_from_u64(seed);
    let calls = [
        Call::List,
        Call::Info,
        Call::Property,
        Call::StreamOut,
        Call::Run,
        Call::RunStatus,
    ];
    // The valid answers first: each call decodes what real Garden sends.
    for call in &calls {
        server.script(valid(call).0);
        let r = rt.block_on(exercise(&garden, call));
        match call {
            Call::Property => assert_eq!(r.unwrap_err().kind(), cpi::ErrorKind::VmNotFound),
            _ => {
                r.unwrap();
            }
        }
    }
    let mut errors = 0;
    for case in 0..cases {
        let call = &calls[rng.random_range(0..calls.len())];
        let (answers, body) = valid(call);
        let which = rng.random_range(0..answers.len());
        let mut script = answers.clone();
        script[which] = mutate(&answers[which], body.as_ref(), &mut rng);
        server.script(script);
        let r = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), exercise(&garden, call)).await
        });
        match r {
            Err(_) => panic!("case {case} (seed {seed}): the call hung"),
            Ok(Err(e)) => {
                errors += 1;
                assert!(!e.message().is_empty());
                assert!(
                    e.message().len() < 4096,
                    "case {case}: an error message of {} bytes",
                    e.message().len()
                );
            }
            Ok(Ok(_)) => {}
        }
    }
    assert!(
        errors > cases / 4,
        "mutations rarely failed: {errors} of {cases}"
    );
}

/// The error body decoder on arbitrary bytes: a typed error or a server
/// error with a bounded message, never a panic.
#[test]
fn error_bodies_of_any_shape_decode() {
    let mut rng = StdRng::seed_from_u64(env_or("GARDEN_FUZZ_SEED", 1207));
    let base =
        json!({"Type": "ContainerNotFoundError", "Message": "m", "Handle": "h", "ProcessID": "p"});
    for _ in 0..2000 {
        let body: Vec<u8> = match rng.random_range(0..3) {
            0 => {
                let mut v = base.clone();
                wrong_type(&mut v, &mut rng);
                v.to_string().into_bytes()
            }
            1 => (0..rng.random_range(0..2000))
                .map(|_| rng.random())
                .collect(),
            2 if rng.random_bool(0.1) => json!({"Type": "X", "Message": "m".repeat(1 << 20)})
                .to_string()
                .into_bytes(),
            _ => {
                let s = base.to_string().into_bytes();
                s[..rng.random_range(0..=s.len())].to_vec()
            }
        };
        let status = rng.random_range(100..600);
        let e = cpi_warden::garden::error_from("fuzz", status, &body);
        assert!(e.to_string().len() < 4096);
    }
}
