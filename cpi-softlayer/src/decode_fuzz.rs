//! Generated tests over the client's decoding of SoftLayer answers: bodies
//! truncated at every byte, values replaced by every other JSON type,
//! random bytes flipped, error bodies of every shape. Decoding answers a
//! value or an error, never panics. (Oversized answers are capped at
//! `client::MAX_ANSWER`; `tests/hostile_answers.rs` sends one through the
//! binary.)

use crate::client::decode_answer;
use crate::types::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Answers as SoftLayer gives them, one per type the CPI reads.
fn samples() -> Vec<Value> {
    vec![
        json!({"id": 1, "provisionDate": "2026-01-01T00:00:00+00:00", "powerState": {"keyName": "RUNNING"},
               "activeTransaction": {"id": 3, "transactionStatus": {"name": "X", "friendlyName": "y"}},
               "primaryBackendIpAddress": "10.0.0.1", "datacenter": {"id": 2, "name": "lon02"},
               "primaryBackendNetworkComponent": {"primaryIpAddress": "10.0.0.1", "macAddress": "06:00",
                   "primarySubnet": {"netmask": "255.255.255.0", "gateway": "10.0.0.254"}}}),
        json!({"id": "12", "capacityGb": 20, "lunId": "3", "serviceResourceBackendIpAddress": "10.2.0.1",
               "notes": "{\"a\":\"b\"}", "provisionedIops": "1000", "storageTierLevel": "READHEAVY_TIER",
               "billingItem": {"id": 9}, "storageType": {"keyName": "ENDURANCE_BLOCK_STORAGE"},
               "allowedVirtualGuests": [{"id": 1}, {"id": "2"}]}),
        json!({"name": "iqn.x", "credential": {"username": "u", "password": "p"}}),
        json!({"orderId": 5, "placedOrder": {"id": 5}}),
        json!({"id": 7, "globalIdentifier": "3f4a-…"}),
        json!({"networkSpace": "PRIVATE", "primaryRouter": {"datacenter": {"name": "lon02"}}}),
        json!([{"id": 1}, {"id": "2"}, {"id": null}]),
        json!({"error": "Unable to find object", "code": "SoftLayer_Exception_ObjectNotFound"}),
    ]
}

fn decode_all(bytes: &[u8], status: u16) {
    let Ok(v) = decode_answer("Fuzz::call", status, bytes) else {
        return;
    };
    fn into<T: DeserializeOwned>(v: &Value) {
        let _ = serde_json::from_value::<T>(v.clone());
    }
    into::<Guest>(&v);
    into::<Volume>(&v);
    into::<AllowedHost>(&v);
    into::<Option<AllowedHost>>(&v);
    into::<OrderReceipt>(&v);
    into::<Template>(&v);
    into::<Vlan>(&v);
    into::<Vec<IdOnly>>(&v);
    into::<Vec<Named>>(&v);
    into::<OneOrMany<Template>>(&v);
}

/// Every JSON type, to put where another was expected.
fn others() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!(u64::MAX),
        json!(""),
        json!("not a number"),
        json!([]),
        json!([1, "x"]),
        json!({}),
        json!({"id": {"id": 1}}),
    ]
}

/// Each value in `v` (at any depth) replaced, one at a time, by each other type.
fn mutations(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for other in others() {
        out.push(other.clone());
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                for m in mutations(child) {
                    let mut copy = map.clone();
                    copy.insert(k.clone(), m);
                    out.push(Value::Object(copy));
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                for m in mutations(child) {
                    let mut copy = items.clone();
                    copy[i] = m;
                    out.push(Value::Array(copy));
                }
            }
        }
        _ => {}
    }
    out
}

#[test]
fn truncated_bodies_decode_to_errors_not_panics() {
    for sample in samples() {
        let bytes = sample.to_string().into_bytes();
        for cut in 0..bytes.len() {
            for status in [200, 404, 429, 500] {
                let r = decode_answer("Fuzz::call", status, &bytes[..cut]);
                if status == 200 && cut < bytes.len() && cut > 0 {
                    // A strict prefix of a JSON document is not one (numbers
                    // aside, which samples never end on).
                    assert!(r.is_err(), "{}", String::from_utf8_lossy(&bytes[..cut]));
                }
                decode_all(&bytes[..cut], status);
            }
        }
    }
}

#[test]
fn wrong_types_anywhere_decode_without_panics() {
    let mut n = 0;
    for sample in samples() {
        for m in mutations(&sample) {
            let bytes = m.to_string().into_bytes();
            decode_all(&bytes, 200);
            decode_all(&bytes, 500);
            n += 1;
        }
    }
    assert!(n > 500, "{n} mutations");
}

#[test]
fn random_byte_flips_and_noise_decode_without_panics() {
    let mut rng = StdRng::seed_from_u64(17);
    let samples: Vec<Vec<u8>> = samples()
        .iter()
        .map(|s| s.to_string().into_bytes())
        .collect();
    for _ in 0..20_000 {
        let mut bytes = samples[rng.random_range(0..samples.len())].clone();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..bytes.len());
            bytes[i] = rng.random();
        }
        if rng.random_bool(0.1) {
            bytes = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
        }
        let status = [200, 201, 404, 429, 500, 503][rng.random_range(0..6)];
        decode_all(&bytes, status);
    }
    // Deep nesting: serde_json's recursion limit answers an error.
    let deep = "[".repeat(100_000);
    assert!(decode_answer("Fuzz::call", 200, deep.as_bytes()).is_err());
    // A huge error text is kept short.
    let big =
        json!({"error": "x".repeat(1 << 20), "code": "SoftLayer_Exception_Public"}).to_string();
    let e = decode_answer("Fuzz::call", 500, big.as_bytes()).unwrap_err();
    assert!(e.to_string().len() < 4_000);
}
