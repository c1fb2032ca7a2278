//! Reading a `cpi.json` once, at the edge: the file, the context overrides,
//! then the typed struct, with errors naming the key path and warnings for
//! keys this CPI does not use (today's jobs render keys a cloud may ignore).

use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

/// Reads and parses the config file as JSON; the error names the file.
pub fn read_file(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::cpi(format!("reading config file {}: {e}", path.display())))?;
    if text.trim().is_empty() {
        return Err(Error::cpi(format!(
            "config file {} is empty",
            path.display()
        )));
    }
    serde_json::from_str(&text).map_err(|e| {
        Error::cpi(format!(
            "config file {} is not valid JSON: {e}",
            path.display()
        ))
    })
}

/// Puts `overlay` over `base`: objects merge key by key, anything else replaces.
pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Puts `overrides` over the object at `path`, creating the objects on the
/// way: where a cloud's job keeps its properties (`cloud.properties.aws`).
/// A non-object on the way is left alone for the typed parse to report.
pub fn merge_at(config: &mut Value, path: &[&str], overrides: &serde_json::Map<String, Value>) {
    let mut target = config;
    for key in path {
        target = match target {
            Value::Object(map) => map
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Default::default())),
            _ => return,
        };
    }
    deep_merge(target, &Value::Object(overrides.clone()));
}

/// The typed config, and the paths of keys it did not use.
pub struct Parsed<T> {
    pub config: T,
    pub unknown_keys: Vec<String>,
}

/// Deserialises `value` into `T`. A missing key or a wrong type gives a
/// `CpiError` naming its path (`cloud.properties.aws.region: missing field`).
pub fn parse<T: DeserializeOwned>(value: Value) -> Result<Parsed<T>> {
    let mut unknown_keys = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    let result = serde_ignored::deserialize(de, |path| unknown_keys.push(path.to_string()));
    match result {
        Ok(config) => Ok(Parsed {
            config,
            unknown_keys,
        }),
        Err(e) => {
            let path = track.path().to_string();
            let at = if path == "." || path.is_empty() {
                String::new()
            } else {
                format!("{path}: ")
            };
            Err(Error::cpi(format!("invalid config: {at}{e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Cfg {
        cloud: Cloud,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Cloud {
        region: String,
        #[serde(default)]
        retries: u32,
    }

    #[test]
    fn names_missing_and_mistyped_keys() {
        let e = parse::<Cfg>(json!({"cloud": {}})).err().unwrap();
        assert!(
            e.message().contains("cloud: missing field `region`"),
            "{}",
            e.message()
        );
        let e = parse::<Cfg>(json!({"cloud": {"region": "r", "retries": "x"}}))
            .err()
            .unwrap();
        assert!(e.message().contains("cloud.retries"), "{}", e.message());
    }

    #[test]
    fn reports_unknown_keys() {
        let p = parse::<Cfg>(json!({"cloud": {"region": "r", "extra": 1}, "debug": {}})).unwrap();
        assert_eq!(p.unknown_keys, vec!["cloud.extra", "debug"]);
    }

    #[test]
    fn merges_at_a_path_creating_it() {
        let over = json!({"region": "eu-west-1"}).as_object().unwrap().clone();
        let mut c =
            json!({"cloud": {"properties": {"aws": {"region": "us-east-1", "max_retries": 8}}}});
        merge_at(&mut c, &["cloud", "properties", "aws"], &over);
        assert_eq!(
            c["cloud"]["properties"]["aws"],
            json!({"region": "eu-west-1", "max_retries": 8})
        );
        let mut c = json!({"cloud": {}});
        merge_at(&mut c, &["cloud", "properties", "aws"], &over);
        assert_eq!(c["cloud"]["properties"]["aws"]["region"], "eu-west-1");
        let mut c = json!({"cloud": "not an object"});
        merge_at(&mut c, &["cloud", "properties"], &over);
        assert_eq!(c, json!({"cloud": "not an object"}));
    }

    #[test]
    fn merges_deeply() {
        let mut base = json!({"a": {"b": 1, "c": 2}, "d": 3});
        deep_merge(&mut base, &json!({"a": {"b": 9}, "e": 4}));
        assert_eq!(base, json!({"a": {"b": 9, "c": 2}, "d": 3, "e": 4}));
    }
}
