//! Arbitrary bytes into the checkpoint loader: never a panic, and a failed load changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rmsprop::{Optimizer, RmsProp, RmsPropConfig};

fuzz_target!(|data: &[u8]| {
    let config = RmsPropConfig::pytorch()
        .with_centered(true)
        .with_momentum(0.9);
    let mut opt = RmsProp::<f32>::new(config).unwrap();
    if rmsprop::checkpoint::from_bytes(&mut opt, data).is_err() {
        assert!(opt.state().tensors.is_empty());
        assert_eq!(opt.steps(), 0);
    }
});
