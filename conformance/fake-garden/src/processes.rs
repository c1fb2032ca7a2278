//! The process routes as real Garden serves them: the run answers 201 with
//! a chunked header and then writes raw NDJSON on the hijacked connection;
//! each output stream is its own connection, closed when the process ends.

use crate::http::{self, Io, Request};
use crate::server::{body_json, get_ci, Cut};
use crate::shell;
use crate::state::{GardenError, ProcessRecord, Shared};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// `POST /containers/:h/processes`: runs the command at once on the
/// container dir, writes 201 + a chunked header, then raw NDJSON on the
/// hijacked connection: the ids, then (after the process ends) the exit.
/// With `cut`, the process runs and then its answer is lost (nothing
/// written) or cut mid-stream (a long-running process inside its first
/// line; any other after the first line, before its exit status).
pub async fn run_process<S: Io + 'static>(
    mut conn: BufReader<S>,
    req: Request,
    state: Shared,
    cut: Cut,
) {
    let spec = body_json(&req).unwrap_or_default();
    let h = req.segments[1].clone();
    let path = get_ci(&spec, "path")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let args: Vec<String> = get_ci(&spec, "args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let found = {
        let s = state.lock().unwrap();
        s.container(&h).map(|c| (c.rootfs(), c.gone.subscribe()))
    };
    let (rootfs, mut gone) = match found {
        Ok(x) => x,
        Err(e) => {
            let _ = http::write_response(
                conn.get_mut(),
                e.status,
                "application/json",
                e.body().to_string().as_bytes(),
            )
            .await;
            return;
        }
    };
    let pid = get_ci(&spec, "id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // As Garden does: a second process with a running one's id is refused.
    let taken = state
        .lock()
        .unwrap()
        .container(&h)
        .is_ok_and(|c| c.processes.contains(&pid));
    if taken {
        let e = GardenError::server(format!("process ID '{pid}' already in use"));
        let _ = http::write_response(
            conn.get_mut(),
            e.status,
            "application/json",
            e.body().to_string().as_bytes(),
        )
        .await;
        return;
    }
    let command = match (path.as_str(), args.as_slice()) {
        ("bash" | "/bin/bash" | "sh" | "/bin/sh", [c, script]) if c == "-c" => script.clone(),
        _ => std::iter::once(path.clone())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let outcome = {
        let rootfs = rootfs.clone();
        match tokio::task::spawn_blocking(move || shell::run(&rootfs, &path, &args)).await {
            Ok(o) => o,
            Err(_) => return,
        }
    };
    let stream_id = "1".to_owned();
    {
        let mut s = state.lock().unwrap();
        if let Ok(c) = s.container_mut(&h) {
            c.processes.push(pid.clone());
            c.commands.push(command.clone());
            if outcome.long_running {
                c.agent_started = true;
                c.agent_starts += 1;
            }
        }
        s.processes.insert(
            format!("{pid}/{stream_id}"),
            ProcessRecord {
                handle: h.clone(),
                stdout: outcome.stdout,
                stderr: outcome.stderr,
                long_running: outcome.long_running,
                attached: 0,
            },
        );
    }
    use tokio::io::AsyncWriteExt;
    if cut == Cut::Lost {
        return;
    }
    let w = conn.get_mut();
    if http::write_hijack_head(w, 201).await.is_err() {
        return;
    }
    let first = format!("{}\n", json!({"process_id": pid, "stream_id": stream_id}));
    if cut == Cut::MidBody && outcome.long_running {
        let _ = w.write_all(&first.as_bytes()[..first.len() / 2]).await;
        let _ = w.flush().await;
        return;
    }
    if w.write_all(first.as_bytes()).await.is_err() || w.flush().await.is_err() {
        return;
    }
    if outcome.long_running {
        // Runs until the container goes or the client hangs up; stdin
        // payloads the client sends are read and ignored.
        let mut sink = Vec::new();
        tokio::select! {
            _ = gone.wait_for(|g| *g) => {}
            _ = conn.read_to_end(&mut sink) => {}
        }
        return;
    }
    if let Ok(c) = state.lock().unwrap().container_mut(&h) {
        c.processes.retain(|p| p != &pid);
    }
    if cut == Cut::MidBody {
        return;
    }
    let last = format!(
        "{}\n",
        json!({"process_id": pid, "exit_status": outcome.exit})
    );
    let w = conn.get_mut();
    let _ = w.write_all(last.as_bytes()).await;
    let _ = w.flush().await;
    // Drain what the client still sends (stdin close) until it hangs up.
    let mut line = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while conn
            .read_line(&mut line)
            .await
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            line.clear();
        }
    })
    .await;
}

/// `GET …/processes/:pid/attaches/:sid/stdout|stderr`: 200 + the same
/// header, the process's output raw, then the connection is closed.
/// With `cut`, the output is taken and then lost, or cut in half.
pub async fn attach<S: Io + 'static>(
    mut conn: BufReader<S>,
    req: Request,
    state: Shared,
    cut: Cut,
) {
    use tokio::io::AsyncWriteExt;
    let key = format!("{}/{}", req.segments[3], req.segments[5]);
    let which = req.segments[6].clone();
    let found = {
        let mut s = state.lock().unwrap();
        let record = s.processes.get_mut(&key).map(|p| {
            p.attached += 1;
            let data = if which == "stderr" {
                std::mem::take(&mut p.stderr)
            } else {
                std::mem::take(&mut p.stdout)
            };
            (data, p.long_running, p.attached >= 2, p.handle.clone())
        });
        if let Some((_, _, true, _)) = &record {
            s.processes.remove(&key);
        }
        record.map(|(d, l, _, h)| (d, l, s.containers.get(&h).map(|c| c.gone.subscribe())))
    };
    let Some((data, long_running, gone)) = found else {
        let e = GardenError {
            status: 404,
            kind: "ProcessNotFoundError",
            message: format!("unknown process: {}", req.segments[3]),
            handle: req.segments[1].clone(),
        };
        let _ = http::write_response(
            conn.get_mut(),
            404,
            "application/json",
            e.body().to_string().as_bytes(),
        )
        .await;
        return;
    };
    if cut == Cut::Lost {
        return;
    }
    let w = conn.get_mut();
    if http::write_hijack_head(w, 200).await.is_err() {
        return;
    }
    if cut == Cut::MidBody {
        let _ = w.write_all(&data[..data.len() / 2]).await;
        let _ = w.flush().await;
        return;
    }
    let _ = w.write_all(&data).await;
    let _ = w.flush().await;
    if long_running {
        if let Some(mut g) = gone {
            let _ = g.wait_for(|g| *g).await;
        }
    }
}
