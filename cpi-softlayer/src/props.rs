//! Reading `cloud_properties`: typed, with the key path in every error, and
//! the keys this CPI does not know named in the log (never silently
//! dropped). The field names of each props type are read from its serde
//! derive, so that the README's parity table is checked against them.

use cpi::Result;
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;

/// The field names serde reads for a struct type.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut capture = Capture(&[]);
    let _ = T::deserialize(&mut capture);
    capture.0
}

struct Capture(&'static [&'static str]);

impl<'de> Deserializer<'de> for &mut Capture {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("fields captured"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// `value` as `T`; keys `T` does not read are logged by name.
pub fn read<T: DeserializeOwned>(what: &str, value: &impl serde::Serialize) -> Result<T> {
    let v = serde_json::to_value(value).unwrap_or(Value::Null);
    let known = fields_of::<T>();
    if let Value::Object(map) = &v {
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !known.contains(k))
            .collect();
        if !unknown.is_empty() {
            tracing::warn!(
                "{what}: not SoftLayer CPI keys, not used: {}",
                unknown.join(", ")
            );
        }
    }
    cpi::typed(what, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct P {
        a: u32,
        #[serde(rename = "b-c")]
        b: Option<String>,
    }

    #[test]
    fn captures_the_field_names() {
        assert_eq!(fields_of::<P>(), &["a", "b-c"]);
    }
}
