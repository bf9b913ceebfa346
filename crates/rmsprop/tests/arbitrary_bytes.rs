//! Bounded robustness run for the checkpoint loader: random bytes and mutations of a valid
//! checkpoint (bit flips, truncations, spliced headers) must give `Ok` or a `CheckpointError`,
//! never a panic, and a failed load must leave the optimizer unchanged.

use rmsprop::checkpoint::{from_bytes, to_bytes};
use rmsprop::{Optimizer, RmsProp, RmsPropConfig};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn config() -> RmsPropConfig {
    RmsPropConfig::pytorch()
        .with_centered(true)
        .with_momentum(0.9)
}

#[test]
fn mutated_checkpoints_never_panic() {
    let mut opt = RmsProp::<f32>::new(config()).unwrap();
    let mut w = vec![0.5f32; 9];
    opt.step_single(&mut w, &[0.1; 9]).unwrap();
    let good = to_bytes(&opt, Some(&[&w])).unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let (mut accepted, mut rejected) = (0, 0);
    for round in 0..20_000 {
        let mut bytes = good.clone();
        match round % 5 {
            0 => {
                let flips = 1 + rng.below(8);
                for _ in 0..flips {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            1 => bytes.truncate(rng.below(good.len())),
            2 => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            3 => bytes = (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            _ => {
                // Rewrite the header length, a classic source of out-of-bounds reads.
                let n = rng.next() % (good.len() as u64 * 2);
                bytes[..8].copy_from_slice(&n.to_le_bytes());
            }
        }
        let mut target = RmsProp::<f32>::new(config()).unwrap();
        match from_bytes(&mut target, &bytes) {
            Ok(_) => accepted += 1,
            Err(_) => {
                assert!(
                    target.state().tensors.is_empty(),
                    "a failed load changed the optimizer"
                );
                rejected += 1;
            }
        }
    }
    assert!(
        rejected > 19_000,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn the_fuzz_corpus_loads_or_fails_cleanly() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/corpus/checkpoint_load"
    );
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let mut target = RmsProp::<f32>::new(config()).unwrap();
        if from_bytes(&mut target, &bytes).is_err() {
            assert!(target.state().tensors.is_empty());
        }
        count += 1;
    }
    assert!(count > 1000, "{count} corpus inputs");
}
