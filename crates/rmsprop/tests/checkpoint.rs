//! Checkpoints: round trips, resume in a fresh process bit for bit, rejection of every kind of bad
//! file, the frozen version-1 fixture, and a writer killed with SIGKILL hundreds of times.
//!
//! Child processes are this test binary run again with `RMSPROP_CHECKPOINT_CHILD` set: see
//! `child_entry`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rmsprop::checkpoint::{from_bytes, load, save, to_bytes, CheckpointError, Checkpointable};
use rmsprop::schedule::{Scheduled, StepLr};
use rmsprop::{
    Accumulate, Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, EpsPlacement,
    Float, Lion, LionConfig, MomentumStyle, OperationOrder, Optimizer, ParamGroups, RmsProp,
    RmsPropConfig, Sgd, SgdConfig, WeightDecayStyle,
};

const CHILD: &str = "RMSPROP_CHECKPOINT_CHILD";

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rmsprop-ckpt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every RMSProp variant and every family member, by index.
fn rmsprop_configs() -> Vec<RmsPropConfig> {
    let mut out = vec![
        RmsPropConfig::pytorch(),
        RmsPropConfig::keras(),
        RmsPropConfig::tf1(),
        RmsPropConfig::optax(),
        RmsPropConfig::timm_tf(),
        RmsPropConfig::graves(),
        RmsPropConfig::lesson(),
    ];
    for order in [
        OperationOrder::Torch,
        OperationOrder::Keras,
        OperationOrder::Optax,
        OperationOrder::Tf1,
    ] {
        for (centered, momentum, style, nesterov) in [
            (true, 0.0, MomentumStyle::LrOutside, false),
            (false, 0.9, MomentumStyle::LrOutside, false),
            (true, 0.9, MomentumStyle::LrInside, true),
        ] {
            let mut c = RmsPropConfig::pytorch()
                .with_operation_order(order)
                .with_centered(centered)
                .with_clamp_variance(centered)
                .with_momentum_style(style)
                .with_eps(
                    1e-6,
                    if nesterov {
                        EpsPlacement::Inside
                    } else {
                        EpsPlacement::Outside
                    },
                );
            c.momentum = momentum;
            c.nesterov = nesterov;
            out.push(c);
        }
    }
    out.push(
        RmsPropConfig::pytorch()
            .with_weight_decay(0.01, WeightDecayStyle::Coupled)
            .with_maximize(true),
    );
    out.push(
        RmsPropConfig::optax()
            .with_bias_correction(true)
            .with_weight_decay(0.01, WeightDecayStyle::Decoupled),
    );
    out
}

fn family_count() -> usize {
    rmsprop_configs().len() + 11
}

/// Runs `f` with optimizer number `i` (RMSProp variants first, then the family, then two
/// wrapper stacks).
fn with_optimizer<T: Float, R>(i: usize, f: impl FnOnce(&mut dyn CheckpointDyn<T>) -> R) -> R {
    let r = rmsprop_configs();
    if i < r.len() {
        return f(&mut RmsProp::<T>::new(r[i].clone()).unwrap());
    }
    match i - r.len() {
        0 => f(&mut Sgd::<T>::new(SgdConfig::plain(0.05)).unwrap()),
        1 => f(&mut Sgd::<T>::new(SgdConfig::momentum(0.05, 0.9).with_dampening(0.1)).unwrap()),
        2 => f(&mut Sgd::<T>::new(SgdConfig::nesterov(0.05, 0.9).with_weight_decay(0.01)).unwrap()),
        3 => f(&mut Adagrad::<T>::new(AdagradConfig::pytorch().with_lr(0.1)).unwrap()),
        4 => f(&mut Adagrad::<T>::new(AdagradConfig::optax().with_lr(0.1)).unwrap()),
        5 => f(&mut Adam::<T>::new(AdamConfig::pytorch_adamw().with_amsgrad(true)).unwrap()),
        6 => f(&mut Adam::<T>::new(AdamConfig::optax().with_lr(0.01)).unwrap()),
        7 => f(&mut Adadelta::<T>::new(AdadeltaConfig::optax()).unwrap()),
        8 => f(&mut Lion::<T>::new(LionConfig::optax().with_lr(0.01)).unwrap()),
        9 => {
            // Param groups of different optimizers, each driven by a schedule.
            let mut groups = ParamGroups::<T, Scheduled<Box<dyn Checkpointable<T>>, StepLr>>::new();
            let step_lr = StepLr {
                step_size: 2,
                gamma: 0.5,
            };
            let rms: Box<dyn Checkpointable<T>> =
                Box::new(RmsProp::<T>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap());
            let adam: Box<dyn Checkpointable<T>> =
                Box::new(Adam::<T>::new(AdamConfig::pytorch().with_lr(0.05)).unwrap());
            groups.add_group("weights", 1, Scheduled::new(rms, step_lr));
            groups.add_group("bias", 1, Scheduled::new(adam, step_lr));
            f(&mut groups)
        }
        _ => {
            // Accumulation over 3 micro-batches of a scheduled optimizer: N = 7 calls leave one
            // micro-batch pending.
            let inner = Scheduled::new(
                Adagrad::<T>::new(AdagradConfig::pytorch().with_lr(0.1)).unwrap(),
                StepLr {
                    step_size: 1,
                    gamma: 0.9,
                },
            );
            f(&mut Accumulate::new(inner, 3).unwrap())
        }
    }
}

/// Object-safe view of a checkpointable optimizer, for the tables above.
trait CheckpointDyn<T: Float> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]);
    fn save(&self, path: &Path, params: &[&[T]]);
    fn load(&mut self, path: &Path) -> Result<Option<Vec<Vec<T>>>, CheckpointError>;
    fn bytes(&self, params: &[&[T]]) -> Vec<u8>;
    fn load_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<T>>>, CheckpointError>;
    fn state_bits(&self, tensors: usize) -> Vec<u64>;
}

impl<T: Float, O: Checkpointable<T>> CheckpointDyn<T> for O {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) {
        Optimizer::step(self, params, grads).unwrap()
    }
    fn save(&self, path: &Path, params: &[&[T]]) {
        save(path, self, Some(params)).unwrap()
    }
    fn load(&mut self, path: &Path) -> Result<Option<Vec<Vec<T>>>, CheckpointError> {
        load(path, self)
    }
    fn bytes(&self, params: &[&[T]]) -> Vec<u8> {
        to_bytes(self, Some(params)).unwrap()
    }
    fn load_bytes(&mut self, bytes: &[u8]) -> Result<Option<Vec<Vec<T>>>, CheckpointError> {
        from_bytes(self, bytes)
    }
    /// Every number of the whole stack: counters, wrapper data, configuration and buffers of
    /// every level (the first `tensors` tensors' buffers through `state_buffers` too).
    fn state_bits(&self, tensors: usize) -> Vec<u64> {
        let mut out = vec![self.steps(), self.skipped_steps()];
        for i in 0..tensors {
            for (_, b) in self.state_buffers(i) {
                out.extend(b.iter().map(|x| x.to_bits_u64()));
            }
        }
        let mut queue = vec![self.snapshot()];
        while let Some(n) = queue.pop() {
            out.extend([n.steps, n.skipped_steps]);
            out.extend(n.extra.to_string().bytes().map(u64::from));
            out.extend(n.config.to_string().bytes().map(u64::from));
            for t in &n.tensors {
                out.push(t.step);
                for (_, b) in &t.buffers {
                    out.extend(b.iter().map(|x| x.to_bits_u64()));
                }
            }
            queue.extend(n.children);
        }
        out
    }
}

fn initial<T: Float>() -> Vec<Vec<T>> {
    vec![
        (0..5).map(|i| T::from_f64(0.3 * i as f64 - 0.7)).collect(),
        (0..3).map(|i| T::from_f64(1.0 + i as f64)).collect(),
    ]
}

/// Deterministic gradients that depend on the parameters (so trajectories really are followed).
fn grads<T: Float>(params: &[Vec<T>], k: usize) -> Vec<Vec<T>> {
    params
        .iter()
        .enumerate()
        .map(|(t, p)| {
            p.iter()
                .enumerate()
                .map(|(i, &x)| T::from_f64(2.0 * x.to_f64() + ((k * 7 + i + t) as f64 * 0.3).sin()))
                .collect()
        })
        .collect()
}

fn run_steps<T: Float>(
    opt: &mut dyn CheckpointDyn<T>,
    params: &mut [Vec<T>],
    from: usize,
    to: usize,
) {
    for k in from..to {
        let g = grads(params, k);
        let mut views: Vec<&mut [T]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
        let gv: Vec<&[T]> = g.iter().map(|g| g.as_slice()).collect();
        opt.step(&mut views, &gv);
    }
}

const N: usize = 7;
const M: usize = 9;

/// The child: loads every optimizer's N-step checkpoint, runs M more steps, saves the result.
fn child_resume<T: Float>(dir: &Path, tag: &str) {
    for i in 0..family_count() {
        with_optimizer::<T, _>(i, |opt| {
            let mut params = opt
                .load(&dir.join(format!("{tag}_{i}_n.safetensors")))
                .unwrap()
                .unwrap();
            run_steps(opt, &mut params, N, N + M);
            let views: Vec<&[T]> = params.iter().map(|p| p.as_slice()).collect();
            opt.save(&dir.join(format!("{tag}_{i}_resumed.safetensors")), &views);
        });
    }
}

/// The child: writes checkpoints in a loop until killed; state k has every parameter equal to k.
fn child_crash(path: &Path) {
    let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
    let mut p = vec![0.0f32; 20_000];
    let g = vec![0.5f32; 20_000];
    opt.step_single(&mut p, &g).unwrap();
    for k in 1u32.. {
        p.fill(k as f32);
        save(path, &opt, Some(&[&p])).unwrap();
        std::fs::write(path.with_extension("last"), k.to_string()).unwrap();
    }
}

#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD) else {
        return; // not a child: nothing to do
    };
    let dir = PathBuf::from(std::env::var("RMSPROP_CHECKPOINT_DIR").unwrap());
    match mode.as_str() {
        "resume" => {
            child_resume::<f32>(&dir, "f32");
            child_resume::<f64>(&dir, "f64");
        }
        "crash" => child_crash(&dir.join("crash.safetensors")),
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(mode: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .env("RMSPROP_CHECKPOINT_DIR", dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn straight_and_saved<T: Float>(dir: &Path, tag: &str) -> Vec<(Vec<Vec<T>>, Vec<u64>)> {
    (0..family_count())
        .map(|i| {
            with_optimizer::<T, _>(i, |opt| {
                let mut params = initial::<T>();
                run_steps(opt, &mut params, 0, N);
                let views: Vec<&[T]> = params.iter().map(|p| p.as_slice()).collect();
                opt.save(&dir.join(format!("{tag}_{i}_n.safetensors")), &views);
                run_steps(opt, &mut params, N, N + M);
                (params, opt.state_bits(2))
            })
        })
        .collect()
}

#[test]
fn resume_in_a_fresh_process_equals_an_uninterrupted_run() {
    let dir = temp_dir("resume");
    let straight32 = straight_and_saved::<f32>(&dir, "f32");
    let straight64 = straight_and_saved::<f64>(&dir, "f64");
    let status = spawn_child("resume", &dir).wait().unwrap();
    assert!(status.success(), "child failed");
    fn compare<T: Float>(dir: &Path, tag: &str, straight: &[(Vec<Vec<T>>, Vec<u64>)]) {
        for (i, (params, state)) in straight.iter().enumerate() {
            with_optimizer::<T, _>(i, |opt| {
                let resumed = opt
                    .load(&dir.join(format!("{tag}_{i}_resumed.safetensors")))
                    .unwrap()
                    .unwrap();
                let bits = |v: &Vec<Vec<T>>| {
                    v.iter()
                        .flatten()
                        .map(|x| x.to_bits_u64())
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    bits(&resumed),
                    bits(params),
                    "{tag} optimizer {i}: parameters"
                );
                assert_eq!(&opt.state_bits(2), state, "{tag} optimizer {i}: state");
            });
        }
    }
    compare(&dir, "f32", &straight32);
    compare(&dir, "f64", &straight64);
    assert_eq!(family_count(), 32);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_writer_killed_at_random_moments_always_leaves_a_whole_checkpoint() {
    let dir = temp_dir("crash");
    let path = dir.join("crash.safetensors");
    // 200 in CI; set RMSPROP_CRASH_KILLS for a longer run.
    let kills: usize = std::env::var("RMSPROP_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(200);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..kills {
        let mut child = spawn_child("crash", &dir);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(2_000 + seed % 25_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !path.exists() {
            continue; // killed before the first write
        }
        let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
        let params = load(&path, &mut opt)
            .expect("the checkpoint on disk always loads")
            .unwrap();
        let k = params[0][0];
        assert!(
            params[0].iter().all(|&x| x == k),
            "one of the states written, not a mix"
        );
        assert!(k >= 1.0 && opt.steps() == 1);
        seen.insert(k as u32);
    }
    assert!(
        seen.len() > 1,
        "the kills landed at different moments: {seen:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn sample() -> (RmsProp<f32>, Vec<f32>, Vec<u8>) {
    let mut opt = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_centered(true)).unwrap();
    let mut w = vec![1.0f32, -2.0, 3.0];
    opt.step_single(&mut w, &[0.1, 0.2, -0.3]).unwrap();
    let bytes = to_bytes(&opt, Some(&[&w])).unwrap();
    (opt, w, bytes)
}

/// Feeds the tensors' bytes of a safetensors file (`header` parsed, `data` after it) to `crc`
/// in name order.
fn crc_tensors(header: &serde_json::Value, data: &[u8], crc: &mut crc32fast::Hasher) {
    let mut tensors: Vec<(&String, &serde_json::Value)> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    for (_, t) in tensors {
        let at = |i: usize| t["data_offsets"][i].as_u64().unwrap() as usize;
        crc.update(&data[at(0)..at(1)]);
    }
}

/// The file with its header edited and, unless the edit set the checksum itself, signed again
/// by the version-3 rule as the format's docs state it (CRC-32 of the other metadata fields,
/// sorted by key, key and value each followed by a zero byte; then of the tensors' bytes in name
/// order): a crafted file, so that the checks behind the checksum are reached.
fn reheader(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let checksum_before = header["__metadata__"]["checksum"].clone();
    edit(&mut header);
    if header["__metadata__"]["checksum"] == checksum_before {
        let data = &bytes[8 + n..];
        let mut crc = crc32fast::Hasher::new();
        let meta = header["__metadata__"].as_object().unwrap().clone();
        let mut keys: Vec<&String> = meta.keys().filter(|k| *k != "checksum").collect();
        keys.sort();
        for k in keys {
            crc.update(k.as_bytes());
            crc.update(&[0]);
            crc.update(meta[k].as_str().unwrap().as_bytes());
            crc.update(&[0]);
        }
        crc_tensors(&header, data, &mut crc);
        header["__metadata__"]["checksum"] = format!("{:08x}", crc.finalize()).into();
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(&bytes[8 + n..]);
    out
}

#[test]
fn bad_checkpoints_are_rejected_with_a_clear_error_and_change_nothing() {
    let (_, _, good) = sample();
    let fresh = || RmsProp::<f32>::new(RmsPropConfig::pytorch().with_centered(true)).unwrap();
    let meta = |key: &'static str, value: &'static str| {
        move |h: &mut serde_json::Value| h["__metadata__"][key] = value.into()
    };
    // Edits the metadata's `tree` (the version-2 description of the stack).
    let tree = |edit: fn(&mut serde_json::Value)| {
        move |h: &mut serde_json::Value| {
            let text = h["__metadata__"]["tree"].as_str().unwrap().to_string();
            let mut t: serde_json::Value = serde_json::from_str(&text).unwrap();
            edit(&mut t);
            h["__metadata__"]["tree"] = t.to_string().into();
        }
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() - 5].to_vec(),
            "not a readable checkpoint",
        ),
        ("empty", vec![], "not a readable checkpoint"),
        (
            "garbage",
            b"hello, not a checkpoint at all".to_vec(),
            "not a readable checkpoint",
        ),
        (
            "flipped data byte",
            {
                let mut b = good.clone();
                let last = b.len() - 1;
                b[last] ^= 0x40;
                b
            },
            "corrupted: checksum",
        ),
        (
            "newer version",
            reheader(&good, meta("format_version", "4")),
            "format version 4",
        ),
        (
            "other format",
            reheader(&good, meta("format", "something-else")),
            "`format`",
        ),
        (
            "other optimizer",
            reheader(&good, meta("optimizer", "adam")),
            "optimizer `adam`",
        ),
        (
            "other kind inside the tree",
            reheader(&good, tree(|t| t["kind"] = "adam".into())),
            "optimizer `adam`",
        ),
        (
            "other dtype",
            reheader(&good, meta("dtype", "float64")),
            "dtype `float64`",
        ),
        (
            "bad config",
            reheader(&good, tree(|t| t["config"] = serde_json::json!({"lr": -1}))),
            "config",
        ),
        (
            "missing steps",
            reheader(
                &good,
                tree(|t| {
                    t.as_object_mut().unwrap().remove("steps");
                }),
            ),
            "`steps` is missing",
        ),
        (
            "renamed tensor",
            reheader(&good, |h| {
                let o = h.as_object_mut().unwrap();
                let v = o.remove("state.0.grad_avg").unwrap();
                o.insert("state.0.grad_mean".into(), v);
            }),
            "`state.0.grad_avg`: missing",
        ),
        (
            "wrong dtype",
            reheader(&good, |h| h["param.0"]["dtype"] = "I32".into()),
            "param.0",
        ),
        (
            "wrong shape",
            reheader(&good, |h| h["param.0"]["shape"] = serde_json::json!([1, 3])),
            "param.0",
        ),
        (
            "wrong length",
            reheader(&good, tree(|t| t["tensors"][0]["len"] = 4.into())),
            "expected 4",
        ),
    ];
    for (what, bytes, expected) in cases {
        let mut opt = fresh();
        let before = opt.state().clone();
        let err = from_bytes(&mut opt, &bytes).expect_err(what);
        assert!(
            err.to_string().contains(expected),
            "{what}: `{err}` lacks `{expected}`"
        );
        assert_eq!(opt.state(), &before, "{what}");
    }
    // Loading into another optimizer kind or dtype.
    let mut adam = Adam::<f32>::new(AdamConfig::pytorch()).unwrap();
    assert!(matches!(
        from_bytes(&mut adam, &good),
        Err(CheckpointError::Mismatch {
            what: "optimizer",
            ..
        })
    ));
    let mut wide = RmsProp::<f64>::new(RmsPropConfig::pytorch().with_centered(true)).unwrap();
    assert!(matches!(
        from_bytes(&mut wide, &good),
        Err(CheckpointError::Mismatch { what: "dtype", .. })
    ));
    // A missing file names the path.
    let err = load(Path::new("/nonexistent/dir/x.safetensors"), &mut fresh()).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/dir/x.safetensors"),
        "{err}"
    );
}

#[test]
fn round_trip_restores_config_and_state_exactly() {
    for i in 0..family_count() {
        with_optimizer::<f64, _>(i, |opt| {
            let mut params = initial::<f64>();
            run_steps(opt, &mut params, 0, 4);
            let views: Vec<&[f64]> = params.iter().map(|p| p.as_slice()).collect();
            let bytes = opt.bytes(&views);
            let bits = opt.state_bits(2);
            with_optimizer::<f64, _>(i, |other| {
                let loaded = other.load_bytes(&bytes).unwrap().unwrap();
                assert_eq!(loaded, params);
                assert_eq!(other.state_bits(2), bits, "optimizer {i}");
            });
        });
    }
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/checkpoint_v1_rmsprop_f32.safetensors"
);

fn fixture_optimizer() -> RmsProp<f32> {
    RmsProp::new(
        RmsPropConfig::pytorch()
            .with_lr(0.05)
            .with_centered(true)
            .with_momentum(0.9),
    )
    .unwrap()
}

fn fixture_run() -> (RmsProp<f32>, Vec<f32>) {
    let mut opt = fixture_optimizer();
    let mut w = vec![1.0f32, -0.5, 0.25, 2.0];
    for k in 0..3 {
        let g: Vec<f32> = w.iter().map(|x| 2.0 * x + k as f32 * 0.1).collect();
        opt.step_single(&mut w, &g).unwrap();
    }
    (opt, w)
}

#[test]
fn the_frozen_version_1_fixture_keeps_loading() {
    // Regenerate (only when the format changes on purpose, never silently):
    // RMSPROP_WRITE_FIXTURE=1 cargo test -p rmsprop --features checkpoint --test checkpoint frozen
    if std::env::var("RMSPROP_WRITE_FIXTURE").is_ok() {
        let (opt, w) = fixture_run();
        std::fs::create_dir_all(Path::new(FIXTURE).parent().unwrap()).unwrap();
        save(Path::new(FIXTURE), &opt, Some(&[&w])).unwrap();
    }
    let mut opt = fixture_optimizer();
    let params = load(Path::new(FIXTURE), &mut opt).unwrap().unwrap();
    let (expected, w) = fixture_run();
    assert_eq!(params, vec![w]);
    assert_eq!(opt.state(), expected.state());
    assert_eq!(opt.config(), expected.config());
}

#[test]
fn loading_restores_the_files_configuration_over_the_callers() {
    // The file: centered RMSProp, lr 0.01, one step taken.
    let (saved, _, good) = sample();
    // The caller built another configuration (another variant and another learning rate).
    let mut opt =
        RmsProp::<f32>::new(RmsPropConfig::keras().with_lr(0.5).with_momentum(0.9)).unwrap();
    from_bytes(&mut opt, &good).unwrap();
    assert_eq!(opt.config(), saved.config());
    assert_eq!(opt.learning_rate(), 0.01);
    assert_eq!(opt.state(), saved.state());
    // And the next step is the saved optimizer's next step, bit for bit.
    let mut a = vec![0.5f32, 0.25, -1.0];
    let mut b = a.clone();
    let mut saved = saved;
    saved.step_single(&mut a, &[0.3, -0.1, 0.2]).unwrap();
    opt.step_single(&mut b, &[0.3, -0.1, 0.2]).unwrap();
    assert_eq!(a, b);
    // A deliberate override comes after loading.
    opt.set_learning_rate(0.002).unwrap();
    assert_eq!(opt.config().lr, 0.002);
}

/// A stack with every wrapper: accumulation over param groups, each group scheduled.
type Stack = Accumulate<f64, ParamGroups<f64, Scheduled<RmsProp<f64>, StepLr>>>;

fn stack() -> Stack {
    let mut groups = ParamGroups::new();
    let sched = |c: RmsPropConfig| {
        Scheduled::new(
            RmsProp::new(c).unwrap(),
            StepLr {
                step_size: 2,
                gamma: 0.5,
            },
        )
    };
    groups.add_group(
        "weights",
        2,
        sched(RmsPropConfig::pytorch().with_lr(0.05).with_momentum(0.9)),
    );
    groups.add_group("bias", 1, sched(RmsPropConfig::keras().with_centered(true)));
    Accumulate::new(groups, 3).unwrap()
}

fn stack_params() -> Vec<Vec<f64>> {
    vec![vec![1.0, -2.0, 0.5], vec![0.25; 4], vec![3.0]]
}

/// Gradients of 0.5*|p|^2 plus a pattern that depends on the call number.
fn stack_call(opt: &mut Stack, params: &mut [Vec<f64>], k: usize) {
    let grads: Vec<Vec<f64>> = params
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .map(|(j, x)| x + (k * 7 + j) as f64 * 0.01)
                .collect()
        })
        .collect();
    let mut views: Vec<&mut [f64]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
    let gv: Vec<&[f64]> = grads.iter().map(|g| g.as_slice()).collect();
    Optimizer::step(opt, &mut views, &gv).unwrap();
}

fn stack_bits(opt: &Stack, params: &[Vec<f64>]) -> Vec<u64> {
    let mut out: Vec<u64> = params.iter().flatten().map(|x| x.to_bits()).collect();
    let snap = opt.snapshot();
    let mut queue = vec![snap];
    while let Some(n) = queue.pop() {
        out.push(n.steps);
        out.push(n.skipped_steps);
        out.extend(n.extra.to_string().bytes().map(u64::from));
        out.extend(n.config.to_string().bytes().map(u64::from));
        for t in &n.tensors {
            out.push(t.step);
            for (_, b) in &t.buffers {
                out.extend(b.iter().map(|x| x.to_bits()));
            }
        }
        queue.extend(n.children);
    }
    out
}

#[test]
fn a_wrapper_stack_resumes_bit_for_bit() {
    // Uninterrupted: 14 calls (4 updates and 2 pending micro-batches at call 14).
    let mut whole = stack();
    let mut p_whole = stack_params();
    for k in 0..14 {
        stack_call(&mut whole, &mut p_whole, k);
    }
    // Interrupted after call 8 (2 pending micro-batches, schedule at step 2).
    let mut first = stack();
    let mut p = stack_params();
    for k in 0..8 {
        stack_call(&mut first, &mut p, k);
    }
    assert_eq!(first.pending(), 2);
    let views: Vec<&[f64]> = p.iter().map(|x| x.as_slice()).collect();
    let bytes = to_bytes(&first, Some(&views)).unwrap();
    let mut resumed = stack();
    let mut p_resumed = from_bytes(&mut resumed, &bytes).unwrap().unwrap();
    assert_eq!(stack_bits(&resumed, &p_resumed), stack_bits(&first, &p));
    for k in 8..14 {
        stack_call(&mut resumed, &mut p_resumed, k);
    }
    assert_eq!(
        stack_bits(&resumed, &p_resumed),
        stack_bits(&whole, &p_whole)
    );
    assert_eq!(
        resumed.inner().groups()[0].optimizer.scheduled_steps(),
        whole.inner().groups()[0].optimizer.scheduled_steps()
    );
}

#[test]
fn a_stack_of_another_shape_is_refused_and_nothing_changes() {
    let mut a = stack();
    let mut p = stack_params();
    for k in 0..4 {
        stack_call(&mut a, &mut p, k);
    }
    let bytes = to_bytes(&a, None).unwrap();
    // Three groups instead of two.
    let mut other = stack();
    other.inner_mut().add_group(
        "extra",
        1,
        Scheduled::new(
            RmsProp::new(RmsPropConfig::pytorch()).unwrap(),
            StepLr {
                step_size: 1,
                gamma: 0.1,
            },
        ),
    );
    let before = stack_bits(&other, &[]);
    let err = from_bytes(&mut other, &bytes).unwrap_err();
    assert!(err.to_string().contains("wrapped levels"), "{err}");
    assert_eq!(stack_bits(&other, &[]), before);
    // Groups that own other numbers of tensors than the file's (the file cannot move tensors
    // between groups, nor make a count overflow).
    for counts in [[1u64, 2], [u64::MAX, 2]] {
        let mut moved: serde_json::Value = {
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            serde_json::from_slice(&bytes[8..8 + n]).unwrap()
        };
        let text = moved["__metadata__"]["tree"].as_str().unwrap().to_string();
        let mut t: serde_json::Value = serde_json::from_str(&text).unwrap();
        t["children"][0]["extra"]["groups"][0]["tensors"] = counts[0].into();
        t["children"][0]["extra"]["groups"][1]["tensors"] = counts[1].into();
        moved["__metadata__"]["tree"] = t.to_string().into();
        let bad = reheader(&bytes, |h| *h = moved.clone());
        let mut fresh = stack();
        let before = stack_bits(&fresh, &[]);
        let err = from_bytes(&mut fresh, &bad).unwrap_err();
        assert!(err.to_string().contains("tensors"), "{err}");
        assert_eq!(stack_bits(&fresh, &[]), before);
    }
    // A bare optimizer cannot load a stack.
    let mut bare = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
    assert!(matches!(
        from_bytes(&mut bare, &bytes),
        Err(CheckpointError::Mismatch {
            what: "optimizer",
            ..
        })
    ));
    // A group whose configuration the file cannot restore (tampered) leaves the first group as
    // it was too: all or nothing across levels.
    let mut tampered: serde_json::Value = {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        serde_json::from_slice(&bytes[8..8 + n]).unwrap()
    };
    let text = tampered["__metadata__"]["tree"]
        .as_str()
        .unwrap()
        .to_string();
    let mut t: serde_json::Value = serde_json::from_str(&text).unwrap();
    t["children"][0]["children"][1]["children"][0]["config"]["rho"] = 2.0.into();
    tampered["__metadata__"]["tree"] = t.to_string().into();
    let bad = reheader(&bytes, |h| *h = tampered.clone());
    let mut fresh = stack();
    let before = stack_bits(&fresh, &[]);
    let err = from_bytes(&mut fresh, &bad).unwrap_err();
    assert!(err.to_string().contains("rho"), "{err}");
    assert_eq!(stack_bits(&fresh, &[]), before);
}

/// Version 3's checksum covers the metadata: a step count or rate edited in the header without
/// signing again is refused (version 2 let it through). A version-2 file, whose checksum covers
/// the tensors only, still loads.
#[test]
fn the_checksum_covers_the_metadata_and_version_2_files_still_load() {
    let (opt, w, good) = sample();
    // Pick a field and change it, keeping the recorded checksum: refused, nothing changes.
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&good[8..8 + n]).unwrap();
    let raw = |h: &serde_json::Value| {
        let mut text = serde_json::to_vec(h).unwrap();
        while text.len() % 8 != 0 {
            text.push(b' ');
        }
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text);
        out.extend(&good[8 + n..]);
        out
    };
    let mut edited = header.clone();
    let tree = edited["__metadata__"]["tree"]
        .as_str()
        .unwrap()
        .replace("\"lr\":0.01", "\"lr\":0.02");
    assert_ne!(
        tree,
        edited["__metadata__"]["tree"].as_str().unwrap(),
        "the rate is in the tree"
    );
    edited["__metadata__"]["tree"] = tree.into();
    let mut fresh = RmsProp::<f32>::new(RmsPropConfig::pytorch().with_centered(true)).unwrap();
    let err = from_bytes(&mut fresh, &raw(&edited)).unwrap_err();
    assert!(matches!(err, CheckpointError::Checksum { .. }), "{err}");
    assert_eq!(fresh.steps(), 0);
    // The same file as version 2: the tensor-only checksum.
    let mut v2 = header.clone();
    v2["__metadata__"]["format_version"] = "2".into();
    let mut crc = crc32fast::Hasher::new();
    crc_tensors(&header, &good[8 + n..], &mut crc);
    v2["__metadata__"]["checksum"] = format!("{:08x}", crc.finalize()).into();
    let params = from_bytes(&mut fresh, &raw(&v2)).unwrap();
    assert_eq!(params, Some(vec![w]));
    assert_eq!(fresh.steps(), opt.steps());
    assert_eq!(fresh.state_buffers(0), opt.state_buffers(0));
}

/// The same state gives the same bytes: safetensors writes its header from hash maps (a new
/// order for every map), and the header is written back with its keys sorted.
#[test]
fn the_same_state_gives_the_same_bytes() {
    let mut opt =
        rmsprop::RmsProp::<f32>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
    let mut p = vec![vec![1.0f32, 2.0, 3.0], vec![4.0f32; 5]];
    for k in 0..3 {
        let g: Vec<Vec<f32>> = p
            .iter()
            .map(|v| v.iter().map(|x| x * 0.1 + k as f32).collect())
            .collect();
        let mut views: Vec<&mut [f32]> = p.iter_mut().map(|v| v.as_mut_slice()).collect();
        let gv: Vec<&[f32]> = g.iter().map(|v| v.as_slice()).collect();
        rmsprop::Optimizer::step(&mut opt, &mut views, &gv).unwrap();
    }
    let views: Vec<&[f32]> = p.iter().map(|v| v.as_slice()).collect();
    let first = rmsprop::checkpoint::to_bytes(&opt, Some(&views)).unwrap();
    for _ in 0..20 {
        assert_eq!(
            rmsprop::checkpoint::to_bytes(&opt, Some(&views)).unwrap(),
            first
        );
    }
    // And it still loads: the header is valid safetensors, 8-byte aligned.
    let header = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!(header % 8, 0);
    let mut fresh =
        rmsprop::RmsProp::<f32>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
    let params = rmsprop::checkpoint::from_bytes(&mut fresh, &first)
        .unwrap()
        .unwrap();
    assert_eq!(params, p);
    assert_eq!(
        rmsprop::checkpoint::to_bytes(&fresh, Some(&views)).unwrap(),
        first
    );
}
