//! Helpers shared by the integration tests.

use serde_json::Value;

/// `reference/seed_sphere.json`: the classic example's states as numpy recorded them.
pub fn seed_sphere() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../reference/seed_sphere.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Rows of f64s stored as the hex of their bits (the reference files' encoding).
pub fn hex_rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|h| f64::from_bits(u64::from_str_radix(h.as_str().unwrap(), 16).unwrap()))
                .collect()
        })
        .collect()
}
