//! Object masks and object filters, as SoftLayer applies them to answers.
//!
//! A mask names the properties to return: naming a local property at a level
//! restricts that level's local properties to the ones named; relational
//! properties appear only when named. A filter is a JSON tree ending in
//! `{"operation": …}` leaves, compared against the full object.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A parsed object mask: the properties named at one level, each with the
/// mask of its own level (empty when nothing under it was named).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mask {
    pub fields: BTreeMap<String, Mask>,
}

impl Mask {
    /// Parses `mask[id, name, a[b, c], d.e]`, `mask(Type)[…]`, or a bare
    /// `id,name` / `id;name` list.
    pub fn parse(text: &str) -> Result<Mask, String> {
        let mut s = text.trim();
        if let Some(rest) = s.strip_prefix("mask") {
            s = rest.trim_start();
            if s.starts_with('(') {
                let close = s.find(')').ok_or("unclosed '(' in object mask")?;
                s = &s[close + 1..];
            }
            if s.starts_with('.') {
                s = &s[1..];
            }
        }
        let s = s.trim();
        let inner = if s.starts_with('[') && s.ends_with(']') {
            &s[1..s.len() - 1]
        } else {
            s
        };
        let mut mask = Mask::default();
        let chars: Vec<char> = inner.chars().collect();
        let mut pos = 0;
        parse_list(&chars, &mut pos, &mut mask)?;
        if pos < chars.len() {
            return Err(format!("unexpected '{}' in object mask", chars[pos]));
        }
        Ok(mask)
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

fn parse_list(chars: &[char], pos: &mut usize, into: &mut Mask) -> Result<(), String> {
    loop {
        skip_ws(chars, pos);
        if *pos >= chars.len() || chars[*pos] == ']' {
            return Ok(());
        }
        parse_item(chars, pos, into)?;
        skip_ws(chars, pos);
        if *pos < chars.len() && (chars[*pos] == ',' || chars[*pos] == ';') {
            *pos += 1;
        } else {
            return Ok(());
        }
    }
}

fn parse_item(chars: &[char], pos: &mut usize, into: &mut Mask) -> Result<(), String> {
    let start = *pos;
    while *pos < chars.len() && (chars[*pos].is_alphanumeric() || chars[*pos] == '_') {
        *pos += 1;
    }
    if start == *pos {
        return Err(format!(
            "expected a property name at position {start} of the object mask"
        ));
    }
    let name: String = chars[start..*pos].iter().collect();
    let child = into.fields.entry(name).or_default();
    if *pos < chars.len() && chars[*pos] == '(' {
        // A type cast such as `storage(SoftLayer_Network_Storage_Iscsi)`.
        while *pos < chars.len() && chars[*pos] != ')' {
            *pos += 1;
        }
        *pos += 1;
    }
    if *pos < chars.len() && chars[*pos] == '.' {
        *pos += 1;
        return parse_item(chars, pos, child);
    }
    if *pos < chars.len() && chars[*pos] == '[' {
        *pos += 1;
        parse_list(chars, pos, child)?;
        if *pos >= chars.len() || chars[*pos] != ']' {
            return Err("unclosed '[' in object mask".into());
        }
        *pos += 1;
    }
    Ok(())
}

fn skip_ws(chars: &[char], pos: &mut usize) {
    while *pos < chars.len() && chars[*pos].is_whitespace() {
        *pos += 1;
    }
}

/// Applies `mask` to a top-level object whose relational properties are
/// `relational`: they are dropped unless named.
pub fn project(value: &Value, relational: &[&str], mask: &Mask) -> Value {
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| project(v, relational, mask)).collect())
        }
        Value::Object(obj) => {
            let names_local = mask
                .fields
                .keys()
                .any(|k| obj.contains_key(k) && !relational.contains(&k.as_str()));
            let mut out = Map::new();
            for (k, v) in obj {
                let named = mask.fields.get(k);
                let keep = if relational.contains(&k.as_str()) {
                    named.is_some()
                } else {
                    named.is_some() || !names_local
                };
                if keep {
                    let v = match named {
                        Some(sub) if !sub.is_empty() => project_nested(v, sub),
                        _ => v.clone(),
                    };
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Below the top level the fake does not know which properties are
/// relational: a sub-mask keeps exactly what it names.
fn project_nested(value: &Value, mask: &Mask) -> Value {
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| project_nested(v, mask)).collect())
        }
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, sub) in &mask.fields {
                if let Some(v) = obj.get(k) {
                    let v = if sub.is_empty() {
                        v.clone()
                    } else {
                        project_nested(v, sub)
                    };
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Whether `obj` passes `filter` (already unwrapped from the property name
/// the filter starts with, such as `iscsiNetworkStorage`).
pub fn matches(obj: &Value, filter: &Value) -> bool {
    let Some(filter) = filter.as_object() else {
        return true;
    };
    if let Some(op) = filter.get("operation") {
        return operation_matches(obj, op, filter.get("options"));
    }
    filter.iter().all(|(k, f)| match obj.get(k) {
        Some(Value::Array(items)) => items.iter().any(|item| matches(item, f)),
        Some(v) => matches(v, f),
        None => false,
    })
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn operation_matches(value: &Value, op: &Value, options: Option<&Value>) -> bool {
    let actual = scalar_text(value);
    let op = scalar_text(op);
    if op == "in" {
        let data = options
            .and_then(Value::as_array)
            .and_then(|opts| opts.iter().find(|o| o["name"] == "data"))
            .and_then(|o| o["value"].as_array().cloned())
            .unwrap_or_default();
        return data.iter().any(|d| scalar_text(d) == actual);
    }
    for (prefix, test) in [
        (
            "*= ",
            (|a: &str, b: &str| a.contains(b)) as fn(&str, &str) -> bool,
        ),
        ("^= ", |a, b| a.starts_with(b)),
        ("$= ", |a, b| a.ends_with(b)),
        ("!= ", |a, b| a != b),
        ("~ ", |a, b| a.eq_ignore_ascii_case(b)),
    ] {
        if let Some(b) = op.strip_prefix(prefix) {
            return test(&actual, b);
        }
    }
    actual == op
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_nested_and_dotted_masks() {
        let m =
            Mask::parse("mask[id, name, allowedHost[name, credential[username,password]], a.b]")
                .unwrap();
        assert_eq!(m.fields.len(), 4);
        assert!(m.fields["allowedHost"].fields["credential"]
            .fields
            .contains_key("password"));
        assert!(m.fields["a"].fields.contains_key("b"));
        assert!(Mask::parse("id").unwrap().fields.contains_key("id"));
        assert!(Mask::parse("mask[id").is_err() || Mask::parse("mask[id").is_ok());
    }

    #[test]
    fn masks_restrict_local_and_name_relational() {
        let obj = json!({"id": 1, "name": "n", "datacenter": {"name": "lon02", "id": 3}});
        let rel = ["datacenter"];
        assert_eq!(
            project(&obj, &rel, &Mask::default()),
            json!({"id": 1, "name": "n"})
        );
        assert_eq!(
            project(&obj, &rel, &Mask::parse("mask[id]").unwrap()),
            json!({"id": 1})
        );
        assert_eq!(
            project(&obj, &rel, &Mask::parse("mask[datacenter[name]]").unwrap()),
            json!({"id": 1, "name": "n", "datacenter": {"name": "lon02"}})
        );
    }

    #[test]
    fn filters_compare_leaves() {
        let obj = json!({"id": 7, "billingItem": {"orderItem": {"order": {"id": 99}}}});
        assert!(matches(&obj, &json!({"id": {"operation": 7}})));
        assert!(matches(
            &obj,
            &json!({"billingItem": {"orderItem": {"order": {"id": {"operation": "99"}}}}})
        ));
        assert!(!matches(&obj, &json!({"id": {"operation": 8}})));
        assert!(matches(
            &obj,
            &json!({"id": {"operation": "in", "options": [{"name": "data", "value": [1, 7]}]}})
        ));
    }
}
