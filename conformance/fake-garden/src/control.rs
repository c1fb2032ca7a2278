//! The fake's own routes under `/_fake/`: faults and inventory, for the
//! standalone binary (in-process users call [`crate::FakeGarden`] instead).

use crate::faults::FaultRule;
use crate::http::Request;
use crate::server::Reply;
use crate::state::{GardenError, Shared};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `/_fake/faults` (POST a rule, DELETE all), `/_fake/chaos` (POST shares,
/// DELETE, GET counts), `/_fake/inventory`, `/_fake/calls`.
pub fn control(req: &Request, state: &Shared) -> Result<Reply, GardenError> {
    let mut s = state.lock().unwrap();
    let what = req.segments.get(1).map(String::as_str).unwrap_or("");
    match (req.method.as_str(), what) {
        ("POST", "faults") => {
            let rule: FaultRule = serde_json::from_slice(&req.body).map_err(|e| GardenError {
                status: 400,
                kind: "",
                message: format!("bad fault rule: {e}"),
                handle: String::new(),
            })?;
            s.faults.add(rule);
            Ok(Reply::Json(json!({})))
        }
        ("DELETE", "faults") => {
            s.faults.clear();
            Ok(Reply::Json(json!({})))
        }
        ("GET", "inventory") => {
            let containers: BTreeMap<&String, Value> =
                s.containers.iter().map(|(h, c)| (h, c.info())).collect();
            Ok(Reply::Json(json!({"containers": containers})))
        }
        ("GET", "calls") => Ok(Reply::Json(json!(s.calls))),
        ("POST", "chaos") => {
            let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let chaos = crate::chaos::from_json(&v).map_err(|e| GardenError {
                status: 400,
                kind: "",
                message: format!("bad chaos: {e}"),
                handle: String::new(),
            })?;
            s.chaos = Some(crate::chaos::ChaosState::new(chaos));
            Ok(Reply::Json(json!({})))
        }
        ("DELETE", "chaos") => {
            s.chaos = None;
            Ok(Reply::Json(json!({})))
        }
        ("GET", "chaos") => {
            let c = s
                .chaos
                .as_ref()
                .map(|c| c.counts.clone())
                .unwrap_or_default();
            Ok(Reply::Json(json!({
                "requests": c.requests, "throttled": c.throttled, "server_errors": c.server_errors,
                "lost_answers": c.lost_answers, "dropped_mid_body": c.dropped_mid_body,
            })))
        }
        _ => Err(GardenError {
            status: 404,
            kind: "",
            message: "unknown control route".into(),
            handle: String::new(),
        }),
    }
}
