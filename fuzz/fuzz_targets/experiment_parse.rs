//! Arbitrary text into the experiment-file parser and validation: Ok or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmsprop_cli::compare::Experiment;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Experiment::from_toml(&text) {
        assert!(!e.to_string().is_empty());
    }
});
