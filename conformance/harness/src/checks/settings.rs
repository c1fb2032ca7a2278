//! What "the agent settings are exactly right" means, key by key, against
//! what the director sent and what the environment configured.

use super::{ensure, fail, Outcome};
use serde_json::Value;
use std::collections::BTreeSet;

/// What the settings must say.
pub struct Expected<'a> {
    pub agent_id: &'a str,
    pub networks: &'a Value,
    pub env: &'a Value,
    /// Persistent disk cids that must be listed (and no others).
    pub persistent: &'a [String],
    /// The agent block the environment configured (mbus, ntp, blobstore).
    pub agent: Option<Value>,
}

/// Compares a settings document with what was sent and configured.
pub fn compare(settings: &Value, want: &Expected) -> Outcome {
    ensure!(
        settings.is_object(),
        "the settings are not a JSON object: {settings}"
    );
    ensure!(
        settings["agent_id"] == want.agent_id,
        "agent_id is {} (sent {})",
        settings["agent_id"],
        want.agent_id
    );
    ensure!(
        settings["vm"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "vm.name is missing or empty: {}",
        settings["vm"]
    );
    compare_networks(&settings["networks"], want.networks)?;
    compare_disks(&settings["disks"], want.persistent)?;
    ensure!(
        settings["env"] == *want.env,
        "env is {} (sent {})",
        redact_env(&settings["env"]),
        redact_env(want.env)
    );
    if let Some(agent) = &want.agent {
        for key in ["mbus", "ntp", "blobstore"] {
            if let Some(configured) = agent.get(key) {
                if configured.is_null() {
                    continue;
                }
                ensure!(
                    settings[key] == *configured,
                    "{key} differs from the configured agent block ({})",
                    if key == "ntp" {
                        format!("{} vs {configured}", settings[key])
                    } else {
                        "credentials hidden".into()
                    }
                );
            }
        }
    }
    Ok(())
}

fn compare_networks(got: &Value, sent: &Value) -> Outcome {
    let (Some(got), Some(sent)) = (got.as_object(), sent.as_object()) else {
        fail!("networks is not an object: {got}");
    };
    let got_names: BTreeSet<&String> = got.keys().collect();
    let sent_names: BTreeSet<&String> = sent.keys().collect();
    ensure!(
        got_names == sent_names,
        "networks are {got_names:?}, sent {sent_names:?}"
    );
    for (name, net) in sent {
        for (key, value) in net.as_object().into_iter().flatten() {
            ensure!(
                got[name].get(key) == Some(value),
                "networks.{name}.{key} is {} (sent {value})",
                got[name].get(key).unwrap_or(&Value::Null)
            );
        }
    }
    Ok(())
}

fn compare_disks(disks: &Value, persistent: &[String]) -> Outcome {
    ensure!(disks.is_object(), "disks is not an object: {disks}");
    ensure!(
        disks["system"].as_str().is_some_and(|s| !s.is_empty()),
        "disks.system is missing or empty: {}",
        disks["system"]
    );
    match &disks["ephemeral"] {
        Value::Null => {}
        Value::String(s) => ensure!(!s.is_empty(), "disks.ephemeral is an empty string"),
        Value::Object(o) => ensure!(!o.is_empty(), "disks.ephemeral is an empty object"),
        other => fail!("disks.ephemeral is neither a path nor an object: {other}"),
    }
    let listed: BTreeSet<String> = match &disks["persistent"] {
        Value::Null => BTreeSet::new(),
        Value::Object(o) => {
            for (cid, hint) in o {
                ensure!(!is_empty_hint(hint), "disks.persistent.{cid} is empty");
            }
            o.keys().cloned().collect()
        }
        other => fail!("disks.persistent is not an object: {other}"),
    };
    let want: BTreeSet<String> = persistent.iter().cloned().collect();
    ensure!(
        listed == want,
        "disks.persistent lists {listed:?}, expected {want:?}"
    );
    Ok(())
}

/// A disk hint the agent cannot use.
pub fn is_empty_hint(hint: &Value) -> bool {
    match hint {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.is_empty() || o.values().all(|v| v.is_null() || v == ""),
        _ => false,
    }
}

fn redact_env(env: &Value) -> String {
    let mut e = env.clone();
    if let Some(p) = e.pointer_mut("/bosh/password") {
        *p = Value::String("<redacted>".into());
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_key_that_differs() {
        let nets =
            json!({"default": {"type": "manual", "ip": "10.0.0.10", "cloud_properties": {}}});
        let env = json!({"bosh": {"password": "x"}});
        let good = json!({"agent_id": "a", "vm": {"name": "vm-1"}, "networks": nets, "env": env,
                          "disks": {"system": "/dev/sda", "ephemeral": "/dev/sdb", "persistent": {}},
                          "mbus": "nats://m", "ntp": ["ntp"], "blobstore": {"provider": "local"}});
        let want = Expected {
            agent_id: "a",
            networks: &nets,
            env: &env,
            persistent: &[],
            agent: Some(
                json!({"mbus": "nats://m", "ntp": ["ntp"], "blobstore": {"provider": "local"}}),
            ),
        };
        assert_eq!(compare(&good, &want), Ok(()));
        let mut bad = good.clone();
        bad["networks"]["default"]["ip"] = json!("10.0.0.11");
        assert!(
            matches!(compare(&bad, &want), Err(super::super::Stop::Fail(m)) if m.contains("networks.default.ip"))
        );
        let mut bad = good.clone();
        bad["ntp"] = json!([]);
        assert!(compare(&bad, &want).is_err());
        let mut bad = good;
        bad["disks"]["persistent"] = json!({"d-1": "/dev/sdc"});
        assert!(compare(&bad, &want).is_err());
    }
}
