//! The `cloud_properties` the warden CPI reads, checked once with errors
//! naming the key (`cloud_properties.ports[1].host`). The Go warden CPI
//! reads `ports` (`{host, container, protocol}`, single ports or ranges);
//! this one also reads `privileged`. Keys neither reads are warned about,
//! as the Go CPI ignores them too. Every key is listed in
//! [`crate::reference`].

use cpi::{CloudProperties, Error, ErrorKind, Result};
use serde_json::Value;

/// Keys of VM `cloud_properties` this CPI reads.
pub const VM_KEYS: &[&str] = &["ports", "privileged"];
/// Keys of one `ports` entry.
pub const PORT_KEYS: &[&str] = &["host", "container", "protocol"];
/// At most this many ports forwarded per VM (each is one Garden request).
pub const MAX_PORTS: usize = 1024;

/// What a VM's `cloud_properties` ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmProps {
    /// (host port, container port), ranges expanded.
    pub ports: Vec<(u16, u16)>,
    /// A privileged container (the Go CPI's only kind); default true.
    pub privileged: bool,
}

fn bad(what: impl Into<String>) -> Error {
    Error::cpi(what.into()).with_kind(ErrorKind::VmCreationFailed)
}

/// Reads VM `cloud_properties`; `at` names them in errors.
pub fn vm_props(props: &CloudProperties, at: &str) -> Result<VmProps> {
    for key in props.keys() {
        if !VM_KEYS.contains(&key.as_str()) {
            tracing::warn!("{at}.{key}: not used by cpi-warden (the Go warden CPI ignores it too)");
        }
    }
    let privileged = match props.get("privileged") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(bad(format!(
                "{at}.privileged: expected true or false, got {other}"
            )))
        }
    };
    let ports = match props.get("ports") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => {
            let mut out = Vec::new();
            for (i, p) in list.iter().enumerate() {
                out.extend(port(p, &format!("{at}.ports[{i}]"))?);
                if out.len() > MAX_PORTS {
                    return Err(bad(format!(
                        "{at}.ports: more than {MAX_PORTS} ports to forward"
                    )));
                }
            }
            out
        }
        Some(other) => {
            return Err(bad(format!(
                "{at}.ports: expected a list of ports ({{\"host\": 80}} or 80), got {other}"
            )))
        }
    };
    Ok(VmProps { ports, privileged })
}

/// One entry: `80`, `{"host": 80}`, `{"host": "8080", "container": 80}`,
/// `{"host": "1000-1010"}` (a range, forwarded to the same range).
fn port(v: &Value, at: &str) -> Result<Vec<(u16, u16)>> {
    let obj = match v {
        Value::Number(_) => {
            let p = range(v, at)?;
            return Ok((p.0..=p.1).map(|x| (x, x)).collect());
        }
        Value::Object(o) => o,
        other => {
            return Err(bad(format!(
                "{at}: expected a port or {{\"host\", \"container\", \"protocol\"}}, got {other}"
            )))
        }
    };
    for key in obj.keys() {
        if !PORT_KEYS.contains(&key.as_str()) {
            tracing::warn!("{at}.{key}: not used by cpi-warden (the Go warden CPI ignores it too)");
        }
    }
    match obj.get("protocol") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) if p.is_empty() || p == "tcp" => {}
        Some(Value::String(p)) if p == "udp" => {
            return Err(Error::not_supported(format!(
                "{at}.protocol: 'udp' is not supported: Garden's net-in forwards tcp only (the Go CPI writes iptables rules, which cpi-warden does not)"
            )))
        }
        Some(other) => {
            return Err(bad(format!(
                "{at}.protocol: expected 'tcp', got {other}"
            )))
        }
    }
    let host = range(
        obj.get("host")
            .ok_or_else(|| bad(format!("{at}.host: missing")))?,
        &format!("{at}.host"),
    )?;
    let container = match obj.get("container") {
        None | Some(Value::Null) => host,
        Some(Value::String(s)) if s.is_empty() => host,
        Some(c) => range(c, &format!("{at}.container"))?,
    };
    let (hl, cl) = (host.1 - host.0, container.1 - container.0);
    if hl != cl {
        return Err(bad(format!(
            "{at}: host and container port ranges must have the same length"
        )));
    }
    if hl > 0 && host != container {
        return Err(bad(format!(
            "{at}: a range must be forwarded to the same range (host {}-{}, container {}-{})",
            host.0, host.1, container.0, container.1
        )));
    }
    Ok((host.0..=host.1).zip(container.0..=container.1).collect())
}

/// A port or an inclusive range: `80`, `"80"`, `"1000-2000"`, `"1000:2000"`.
fn range(v: &Value, at: &str) -> Result<(u16, u16)> {
    let one = |s: &str| -> Result<u16> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("{at}: '{s}' is not a port between 1 and 65535")))
    };
    let (start, end) = match v {
        Value::Number(n) => {
            let p = n
                .as_u64()
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| bad(format!("{at}: {n} is not a port between 1 and 65535")))?
                as u16;
            (p, p)
        }
        Value::String(s) => match s.split_once(['-', ':']) {
            Some((a, b)) => (one(a)?, one(b)?),
            None => {
                let p = one(s)?;
                (p, p)
            }
        },
        other => {
            return Err(bad(format!(
                "{at}: expected a port or a range such as \"1000-2000\", got {other}"
            )))
        }
    };
    if start > end {
        return Err(bad(format!(
            "{at}: range start {start} is after its end {end}"
        )));
    }
    Ok((start, end))
}

/// Disk `cloud_properties`: the Go warden CPI reads none, neither does
/// this one; each key set is warned about.
pub fn disk_props(props: &CloudProperties, at: &str) {
    for key in props.keys() {
        tracing::warn!("{at}.{key}: not used by cpi-warden (the Go warden CPI ignores it too)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Result<VmProps> {
        vm_props(v.as_object().unwrap(), "cloud_properties")
    }

    #[test]
    fn ports_as_the_go_cpi_reads_them() {
        let p = props(json!({"ports": [80, {"host": 8080, "container": 80}, {"host": "2222"},
                                        {"host": "1000-1002", "protocol": "tcp"}, {"host": "3000:3001", "container": "3000-3001"}]}))
        .unwrap();
        assert_eq!(
            p.ports,
            vec![
                (80, 80),
                (8080, 80),
                (2222, 2222),
                (1000, 1000),
                (1001, 1001),
                (1002, 1002),
                (3000, 3000),
                (3001, 3001)
            ]
        );
        assert!(p.privileged);
        assert!(!props(json!({"privileged": false})).unwrap().privileged);
        assert_eq!(props(json!({})).unwrap().ports, vec![]);
    }

    #[test]
    fn bad_ports_name_the_key() {
        for (v, key) in [
            (json!({"ports": "80"}), "cloud_properties.ports:"),
            (
                json!({"ports": [{"container": 80}]}),
                "cloud_properties.ports[0].host: missing",
            ),
            (
                json!({"ports": [1, {"host": 0}]}),
                "cloud_properties.ports[1].host",
            ),
            (
                json!({"ports": [{"host": "70000"}]}),
                "cloud_properties.ports[0].host",
            ),
            (json!({"ports": [{"host": "10-5"}]}), "range start"),
            (
                json!({"ports": [{"host": "1-3", "container": "1-2"}]}),
                "same length",
            ),
            (
                json!({"ports": [{"host": "1-3", "container": "4-6"}]}),
                "same range",
            ),
            (
                json!({"ports": [{"host": 1, "protocol": "icmp"}]}),
                "cloud_properties.ports[0].protocol",
            ),
            (json!({"ports": [{"host": "1-2000"}]}), "more than 1024"),
            (json!({"privileged": "yes"}), "cloud_properties.privileged"),
        ] {
            let e = props(v.clone()).unwrap_err();
            assert!(e.message().contains(key), "{v}: {}", e.message());
            assert_eq!(e.kind(), ErrorKind::VmCreationFailed, "{v}");
        }
        let e = props(json!({"ports": [{"host": 53, "protocol": "udp"}]})).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotSupported);
        assert!(e.message().contains("ports[0].protocol"), "{}", e.message());
    }
}
