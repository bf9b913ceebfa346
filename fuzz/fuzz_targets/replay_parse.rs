//! Arbitrary text into the replay-vector parser and replay: an error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmsprop_cli::replay::Vector;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Vector::parse(&text, "fuzz.json".as_ref()).and_then(|v| v.replay(None)) {
        assert!(e.to_string().starts_with("fuzz.json: "));
    }
});
