//! `rmsprop-mpi`: data-parallel training with sharded optimizer state, under `mpirun`.
//!
//! ```text
//! mpirun -np 4 rmsprop-mpi train digits-mlp [--optimizer rmsprop] [--epochs N] [--checkpoint DIR] [--resume DIR]
//! mpirun -np 4 rmsprop-mpi check exact|determinism|resume ...
//! ```
//!
//! `train` prints what `rmsprop train` prints (one line per epoch, then `test accuracy: 0.NNN`),
//! then each rank's optimizer-state bytes and how its step time split into computing gradients,
//! communication and the optimizer step. `check` runs the checks the tests drive.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, Var};
use clap::{Parser, Subcommand};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use rmsprop::checkpoint::Checkpointable;
use rmsprop::schedule::{Scheduled, StepLr};
use rmsprop::{
    AdamConfig, NonFinitePolicy, Optim, Optimizer, ParamGroups, RmsProp, RmsPropConfig, SgdConfig,
};
use rmsprop_cli::run::{build_optimizer_as, OptimizerSpec};
use rmsprop_cli::train::{Split, Task, Workload};
use rmsprop_mpi::{shards, Outcome, Sharded};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "rmsprop-mpi",
    about = "Data-parallel training with sharded optimizer state (ZeRO-1) over MPI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trains a task data-parallel: each rank computes gradients on its part of every batch and
    /// holds the optimizer state of its range of the parameters.
    Train {
        /// The task (as `rmsprop train`).
        #[arg(value_enum)]
        task: Task,
        /// rmsprop, sgd, momentum, adagrad or adam.
        #[arg(long, default_value = "rmsprop")]
        optimizer: String,
        /// Learning rate (default: the task's tuned rate, as `rmsprop train`).
        #[arg(long)]
        lr: Option<f64>,
        /// Epochs (default: the task's, as `rmsprop train`).
        #[arg(long)]
        epochs: Option<usize>,
        /// Seed of the weights and the batch order.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Writes a sharded checkpoint into this folder after every epoch.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Resumes from the newest complete checkpoint in this folder (written by any number of
        /// ranks).
        #[arg(long)]
        resume: Option<PathBuf>,
    },
    /// Times sharded RMSProp steps on synthetic float32 parameters: per step, the time spent
    /// communicating and in the optimizer on each rank, and the bytes each rank sends.
    Bench {
        /// Parameters in all (split into 10 tensors).
        #[arg(long, default_value_t = 10_000_000)]
        params: usize,
        /// Timed steps (after one untimed step that creates the state).
        #[arg(long, default_value_t = 20)]
        steps: u64,
    },
    /// Checks driven by the tests.
    #[command(subcommand)]
    Check(Check),
}

#[derive(Subcommand)]
enum Check {
    /// The sharded step equals a single-process step bit for bit when every rank has the same
    /// gradients (several optimizers and wrappers).
    Exact,
    /// Prints a hash of the parameters after steps with different gradients on every rank.
    Determinism,
    /// Steps with the same gradients on every rank; saves a checkpoint after `--save-at` steps
    /// (when given), resumes from `--resume` (when given), and prints a hash of the parameters and
    /// the state after `--steps` steps in all.
    Resume {
        /// Checkpoint folder to write.
        #[arg(long)]
        save: Option<PathBuf>,
        /// The step after which to save.
        #[arg(long, default_value_t = 5)]
        save_at: u64,
        /// Checkpoint folder to resume from.
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Steps in all.
        #[arg(long, default_value_t = 10)]
        steps: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(universe) = mpi::initialize() else {
        eprintln!("error: MPI could not be initialized");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let result = match cli.command {
        Command::Train {
            task,
            optimizer,
            lr,
            epochs,
            seed,
            checkpoint,
            resume,
        } => train(
            &world, task, &optimizer, lr, epochs, seed, checkpoint, resume,
        ),
        Command::Bench { params, steps } => bench(&world, params, steps),
        Command::Check(check) => run_check(&world, check),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error (rank {}): {e:#}", world.rank());
            // Every rank meets the same errors; abort anyway so no rank waits for another.
            world.abort(1)
        }
    }
}

fn values(var: &Var) -> Result<Vec<f32>> {
    Ok(var.as_tensor().flatten_all()?.to_vec1::<f32>()?)
}

/// Splits `x` (examples along dim 0) into `ranks` parts and returns this rank's, with its share
/// of the batch.
fn part(
    x: &Tensor,
    y: &Tensor,
    rank: usize,
    ranks: usize,
) -> Result<Option<(Tensor, Tensor, f64)>> {
    let n = x.dim(0)?;
    let (lo, hi) = (n * rank / ranks, n * (rank + 1) / ranks);
    if lo == hi {
        return Ok(None);
    }
    Ok(Some((
        x.narrow(0, lo, hi - lo)?,
        y.narrow(0, lo, hi - lo)?,
        (hi - lo) as f64 / n as f64,
    )))
}

#[allow(clippy::too_many_arguments)]
fn train(
    world: &SimpleCommunicator,
    task: Task,
    optimizer: &str,
    lr: Option<f64>,
    epochs: Option<usize>,
    seed: u64,
    checkpoint: Option<PathBuf>,
    resume: Option<PathBuf>,
) -> Result<()> {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let mut spec = rmsprop_cli::train::TrainSpec::new(task, optimizer, seed);
    spec.lr = lr;
    spec.epochs = epochs;
    let work = Workload::new(task, seed, Split::Test)?;
    let vars = work.vars();
    let lengths: Vec<usize> = vars.iter().map(|v| v.elem_count()).collect();
    let inner: Box<dyn Checkpointable<f32>> = build_optimizer_as::<f32>(&OptimizerSpec {
        lr: Some(spec.lr()),
        ..OptimizerSpec::named(optimizer)
    })?;
    let mut opt = Sharded::new(world.duplicate(), &lengths, 64, inner);
    let mut params: Vec<Vec<f32>> = vars.iter().map(values).collect::<Result<_>>()?;
    let per_epoch = work.batches_per_epoch();
    let mut first = 0;
    if let Some(dir) = &resume {
        let loaded = shards::load(dir, &mut opt, None)
            .with_context(|| format!("--resume {}", dir.display()))?;
        params = loaded.params;
        for (v, p) in vars.iter().zip(&params) {
            v.set(&Tensor::from_slice(p, v.shape(), &Device::Cpu)?)?;
        }
        first = opt.steps() as usize / per_epoch;
        if rank == 0 {
            println!(
                "resumed from {} (written by {} ranks) at epoch {first}",
                loaded.folder.display(),
                loaded.ranks
            );
        }
    }
    if let Some(dir) = &checkpoint {
        // Lets a supervisor (the fault test) find each rank's process.
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("pid-{rank}")),
            std::process::id().to_string(),
        )?;
    }
    let total = spec.epochs();
    let mut compute = Duration::ZERO;
    let mut last = None;
    for epoch in first..total {
        let (mut sum, mut count) = (0.0, 0);
        for (x, y) in work.epoch(seed, epoch)? {
            let began = Instant::now();
            let mut grads: Vec<Vec<f32>> = lengths.iter().map(|&n| vec![0.0; n]).collect();
            if let Some((x, y, share)) = part(&x, &y, rank, ranks)? {
                // The part's mean loss, weighted so the ranks' average is the batch's mean.
                let loss = work.loss(&x, &y)?;
                sum += loss.to_scalar::<f32>()? as f64 * share;
                let scaled = (loss * (share * ranks as f64))?;
                let store = scaled.backward()?;
                for (g, v) in grads.iter_mut().zip(&vars) {
                    if let Some(t) = store.get(v.as_tensor()) {
                        *g = t.flatten_all()?.to_vec1::<f32>()?;
                    }
                }
            }
            compute += began.elapsed();
            count += 1;
            let views: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
            let mut slices: Vec<&mut [f32]> = params.iter_mut().map(Vec::as_mut_slice).collect();
            let outcome = opt
                .step(&mut slices, &views)
                .with_context(|| format!("epoch {}: the {optimizer} step failed", epoch + 1))?;
            if outcome == Outcome::Stepped {
                let began = Instant::now();
                for (v, p) in vars.iter().zip(&params) {
                    v.set(&Tensor::from_slice(p, v.shape(), &Device::Cpu)?)?;
                }
                compute += began.elapsed();
            }
        }
        // The training loss over all ranks' parts.
        let mut losses = vec![0.0f64; ranks];
        world.all_gather_into(&sum, &mut losses[..]);
        let train_loss = losses.iter().sum::<f64>() / count.max(1) as f64;
        let (eval_loss, eval_accuracy) = work.evaluate()?;
        if rank == 0 {
            println!(
                "epoch {}/{total}: train loss {train_loss:.4}, test loss {eval_loss:.4}, test accuracy {eval_accuracy:.3}",
                epoch + 1
            );
        }
        last = Some(eval_accuracy);
        if let Some(dir) = &checkpoint {
            let views: Vec<&[f32]> = params.iter().map(Vec::as_slice).collect();
            shards::save(dir, &opt, &views, json!({"epoch": epoch + 1}))?;
        }
    }
    let Some(accuracy) = last else {
        bail!("nothing to train: the checkpoint is at epoch {first} of {total}");
    };
    // Per-rank figures, gathered to rank 0.
    let t = opt.timing();
    let mine = [
        opt.state_bytes() as f64,
        compute.as_secs_f64(),
        t.communication.as_secs_f64(),
        t.optimizer.as_secs_f64(),
    ];
    let mut all = vec![0.0f64; 4 * ranks];
    world.all_gather_into(&mine[..], &mut all[..]);
    if rank == 0 {
        println!("test accuracy: {accuracy:.3}");
        // Every buffer holds one value per parameter, so the ranks' states add up to one
        // process's.
        let single: usize = all.chunks(4).map(|c| c[0] as usize).sum();
        println!(
            "optimizer state: {single} bytes in one process (the sum over ranks of their ranges' state)"
        );
        for (r, c) in all.chunks(4).enumerate() {
            println!(
                "rank {r}: optimizer state {} bytes ({:.3} of one process); step time: compute {:.3} s, communication {:.3} s, optimizer {:.3} s",
                c[0] as u64,
                c[0] / single.max(1) as f64,
                c[1],
                c[2],
                c[3]
            );
        }
    }
    Ok(())
}

fn bench(world: &SimpleCommunicator, params: usize, steps: u64) -> Result<()> {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let lengths: Vec<usize> = (0..10)
        .map(|t| params * (t + 1) / 10 - params * t / 10)
        .collect();
    let mut sharded = Sharded::new(
        world.duplicate(),
        &lengths,
        64,
        RmsProp::<f32>::new(RmsPropConfig::pytorch())?,
    );
    let mut p: Vec<Vec<f32>> = lengths
        .iter()
        .enumerate()
        .map(|(t, &n)| fill(t as u64, n))
        .collect();
    let g: Vec<Vec<f32>> = lengths
        .iter()
        .enumerate()
        .map(|(t, &n)| fill(50 + t as u64, n))
        .collect();
    let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
    let mut ps: Vec<&mut [f32]> = p.iter_mut().map(Vec::as_mut_slice).collect();
    sharded.step(&mut ps, &gs)?;
    let before = sharded.timing();
    world.barrier();
    let began = Instant::now();
    for _ in 0..steps {
        sharded.step(&mut ps, &gs)?;
    }
    let wall = began.elapsed().as_secs_f64() / steps as f64;
    let t = sharded.timing();
    let per = |d: Duration| d.as_secs_f64() / steps as f64 * 1e3;
    let own = sharded.partition().range(rank).len();
    // All-to-all: every element outside the own range goes out once; all-gather: the own range
    // goes to every other rank.
    let sent = (params - own + own * (ranks - 1)) * 4;
    let mine = [
        wall * 1e3,
        per(t.communication - before.communication),
        per(t.optimizer - before.optimizer),
        sharded.state_bytes() as f64,
        sent as f64,
    ];
    let mut all = vec![0.0f64; 5 * ranks];
    world.all_gather_into(&mine[..], &mut all[..]);
    if rank == 0 {
        println!("{params} float32 parameters, RMSProp (PyTorch), {ranks} ranks, {steps} steps");
        for (r, c) in all.chunks(5).enumerate() {
            println!(
                "rank {r}: step {:.2} ms = communication {:.2} ms + optimizer {:.2} ms + copies {:.2} ms; state {} bytes; sends {} bytes per step",
                c[0],
                c[1],
                c[2],
                c[0] - c[1] - c[2],
                c[3] as u64,
                c[4] as u64
            );
        }
    }
    Ok(())
}

/// Deterministic values for check runs: a function of (seed, index).
fn fill(seed: u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (i as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z ^= z >> 31;
            z = z.wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 29;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Tensor lengths for the checks: odd sizes, so ranges cut through tensors.
const LENGTHS: [usize; 4] = [1001, 37, 4099, 3];

fn hash(values: &[Vec<f32>]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for v in values {
        for x in v {
            h.update(&x.to_le_bytes());
        }
    }
    h.finalize()
}

/// Runs `steps` steps of `inner` sharded and of `single` on whole tensors with the same
/// gradients everywhere, and compares parameters and state bit for bit.
fn exact_case<O: Optimizer<f32>>(
    world: &SimpleCommunicator,
    name: &str,
    inner: O,
    mut single: O,
) -> Result<()> {
    let mut sharded = Sharded::new(world.duplicate(), &LENGTHS, 16, inner);
    let mut a: Vec<Vec<f32>> = LENGTHS
        .iter()
        .enumerate()
        .map(|(t, &n)| fill(t as u64, n))
        .collect();
    let mut b = a.clone();
    for step in 0..6u64 {
        let g: Vec<Vec<f32>> = LENGTHS
            .iter()
            .enumerate()
            .map(|(t, &n)| fill(100 + step * 10 + t as u64, n))
            .collect();
        let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
        let mut pa: Vec<&mut [f32]> = a.iter_mut().map(Vec::as_mut_slice).collect();
        sharded.step(&mut pa, &gs)?;
        let mut pb: Vec<&mut [f32]> = b.iter_mut().map(Vec::as_mut_slice).collect();
        single.step(&mut pb, &gs)?;
    }
    if a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .any(|(x, y)| x.to_bits() != y.to_bits())
    {
        bail!("{name}: sharded parameters differ from the single process's");
    }
    for (i, s) in sharded.segments().iter().enumerate() {
        let ours = sharded.inner().state_buffers(i);
        let theirs = single.state_buffers(s.tensor);
        for ((name_a, x), (name_b, y)) in ours.iter().zip(&theirs) {
            if name_a != name_b
                || x.iter()
                    .zip(&y[s.start..s.end])
                    .any(|(p, q)| p.to_bits() != q.to_bits())
            {
                bail!("{name}: state `{name_a}` of tensor {} differs", s.tensor);
            }
        }
    }
    Ok(())
}

fn rms() -> RmsPropConfig {
    RmsPropConfig::pytorch()
        .with_centered(true)
        .with_momentum(0.9)
}

fn run_check(world: &SimpleCommunicator, check: Check) -> Result<()> {
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    match check {
        Check::Exact => {
            let new = |c: RmsPropConfig| RmsProp::<f32>::new(c);
            exact_case(world, "rmsprop centered momentum", new(rms())?, new(rms())?)?;
            exact_case(
                world,
                "rmsprop keras",
                new(RmsPropConfig::keras())?,
                new(RmsPropConfig::keras())?,
            )?;
            let adam = || Optim::<AdamConfig, f32>::new(AdamConfig::pytorch().with_amsgrad(true));
            exact_case(world, "adam amsgrad", adam()?, adam()?)?;
            let sgd = || Optim::<SgdConfig, f32>::new(SgdConfig::momentum(0.05, 0.9));
            exact_case(world, "sgd momentum", sgd()?, sgd()?)?;
            let sched = || -> Result<_> {
                Ok(Scheduled::new(
                    new(rms())?,
                    StepLr {
                        step_size: 2,
                        gamma: 0.5,
                    },
                ))
            };
            exact_case(world, "scheduled rmsprop", sched()?, sched()?)?;
            // Parameter groups: tensors 0-1 in one group, 2-3 in another, each rank's groups
            // holding its segments of them.
            let groups = [0usize, 0, 1, 1];
            let partition = rmsprop_mpi::Partition::new(&LENGTHS, ranks, 16);
            let counts = partition.group_counts(rank, &groups);
            let mut sharded_groups = ParamGroups::<f32, RmsProp<f32>>::new();
            sharded_groups.add_group("a", counts[0], new(rms())?);
            sharded_groups.add_group("b", counts[1], new(rms().with_lr(1e-3))?);
            let mut single_groups = ParamGroups::<f32, RmsProp<f32>>::new();
            single_groups.add_group("a", 2, new(rms())?);
            single_groups.add_group("b", 2, new(rms().with_lr(1e-3))?);
            exact_case(world, "param groups", sharded_groups, single_groups)?;
            // A NaN on one rank: every rank refuses the same way, and nothing changes.
            let mut sharded = Sharded::new(world.duplicate(), &LENGTHS, 16, new(rms())?);
            let mut p: Vec<Vec<f32>> = LENGTHS.iter().map(|&n| vec![0.5; n]).collect();
            let mut g: Vec<Vec<f32>> = LENGTHS.iter().map(|&n| vec![0.1; n]).collect();
            if rank == ranks - 1 {
                g[2][7] = f32::NAN;
            }
            let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
            let mut ps: Vec<&mut [f32]> = p.iter_mut().map(Vec::as_mut_slice).collect();
            let err = sharded
                .step(&mut ps, &gs)
                .expect_err("a NaN refuses the step");
            if !err
                .to_string()
                .contains("tensor 2: gradient element 7 is NaN")
            {
                bail!("unexpected error: {err}");
            }
            let mut sharded = sharded.with_non_finite(NonFinitePolicy::Skip);
            if sharded.step(&mut ps, &gs)? != Outcome::Skipped || sharded.skipped_steps() != 1 {
                bail!("the skip policy did not skip on every rank");
            }
            if p.iter().flatten().any(|&x| x != 0.5) || sharded.state_bytes() != 0 {
                bail!("a refused step changed something");
            }
            // Clipping by the global norm: one scalar agreement, within rounding of one process.
            let clip =
                Sharded::new(world.duplicate(), &LENGTHS, 16, new(rms())?).with_clip_grad_norm(0.5);
            let mut clip = clip;
            let mut a: Vec<Vec<f32>> = LENGTHS.iter().map(|&n| vec![0.5; n]).collect();
            let g: Vec<Vec<f32>> = LENGTHS
                .iter()
                .enumerate()
                .map(|(t, &n)| fill(7 + t as u64, n))
                .collect();
            let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
            let mut pa: Vec<&mut [f32]> = a.iter_mut().map(Vec::as_mut_slice).collect();
            clip.step(&mut pa, &gs)?;
            let mut gc = g.clone();
            let mut gcs: Vec<&mut [f32]> = gc.iter_mut().map(Vec::as_mut_slice).collect();
            rmsprop::clip::clip_grad_norm(&mut gcs, 0.5, 2.0);
            let mut single = new(rms())?;
            let mut b: Vec<Vec<f32>> = LENGTHS.iter().map(|&n| vec![0.5; n]).collect();
            let gcv: Vec<&[f32]> = gc.iter().map(Vec::as_slice).collect();
            let mut pb: Vec<&mut [f32]> = b.iter_mut().map(Vec::as_mut_slice).collect();
            single.step(&mut pb, &gcv)?;
            let worst = a
                .iter()
                .flatten()
                .zip(b.iter().flatten())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            if worst > 1e-6 {
                bail!("clipped sharded step differs from one process's by {worst}");
            }
            if rank == 0 {
                println!("exact: ok on {ranks} ranks");
            }
        }
        Check::Determinism => {
            let mut sharded =
                Sharded::new(world.duplicate(), &LENGTHS, 16, RmsProp::<f32>::new(rms())?);
            let mut p: Vec<Vec<f32>> = LENGTHS
                .iter()
                .enumerate()
                .map(|(t, &n)| fill(t as u64, n))
                .collect();
            for step in 0..5u64 {
                // Different gradients on every rank: the average's bits depend on the order.
                let g: Vec<Vec<f32>> = LENGTHS
                    .iter()
                    .enumerate()
                    .map(|(t, &n)| fill(1000 * rank as u64 + 10 * step + t as u64, n))
                    .collect();
                let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
                let mut ps: Vec<&mut [f32]> = p.iter_mut().map(Vec::as_mut_slice).collect();
                sharded.step(&mut ps, &gs)?;
            }
            if rank == 0 {
                println!("hash {:08x}", hash(&p));
            }
        }
        Check::Resume {
            save,
            save_at,
            resume,
            steps,
        } => {
            let mut sharded =
                Sharded::new(world.duplicate(), &LENGTHS, 16, RmsProp::<f32>::new(rms())?);
            let mut p: Vec<Vec<f32>> = LENGTHS
                .iter()
                .enumerate()
                .map(|(t, &n)| fill(t as u64, n))
                .collect();
            if let Some(dir) = &resume {
                let loaded = shards::load(dir, &mut sharded, None)
                    .with_context(|| format!("--resume {}", dir.display()))?;
                p = loaded.params;
            }
            while sharded.steps() < steps {
                let step = sharded.steps();
                // The same gradients on every rank (a function of the step and the parameters):
                // the sharded run is then exactly one process's run, whatever the rank count.
                let g: Vec<Vec<f32>> = p
                    .iter()
                    .enumerate()
                    .map(|(t, v)| {
                        let noise = fill(10 * step + t as u64, v.len());
                        v.iter()
                            .zip(noise)
                            .map(|(x, z)| 2.0 * x + 0.1 * z)
                            .collect()
                    })
                    .collect();
                let gs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
                let mut ps: Vec<&mut [f32]> = p.iter_mut().map(Vec::as_mut_slice).collect();
                sharded.step(&mut ps, &gs)?;
                if let Some(dir) = &save {
                    if sharded.steps() == save_at {
                        let views: Vec<&[f32]> = p.iter().map(Vec::as_slice).collect();
                        shards::save(dir, &sharded, &views, json!({"check": "resume"}))?;
                    }
                }
            }
            // The whole state, gathered buffer by buffer: each rank's segments in rank order
            // make the flat buffer, whatever the rank count.
            let names: Vec<&str> = sharded
                .inner()
                .state_buffers(0)
                .iter()
                .map(|(n, _)| *n)
                .collect();
            let mut state = crc32fast::Hasher::new();
            for k in 0..names.len() {
                let mine: Vec<f32> = (0..sharded.segments().len())
                    .flat_map(|i| sharded.inner().state_buffers(i)[k].1.to_vec())
                    .collect();
                let n = mine.len() as i32;
                let mut counts = vec![0i32; ranks];
                world.all_gather_into(&n, &mut counts[..]);
                let displs: Vec<i32> = counts
                    .iter()
                    .scan(0, |acc, &c| {
                        let d = *acc;
                        *acc += c;
                        Some(d)
                    })
                    .collect();
                let mut all = vec![0.0f32; counts.iter().sum::<i32>() as usize];
                let mut recv =
                    mpi::datatype::PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
                world.all_gather_varcount_into(&mine[..], &mut recv);
                for x in &all {
                    state.update(&x.to_le_bytes());
                }
            }
            let params_hash = hash(&p);
            let mut hashes = vec![0u32; ranks];
            world.all_gather_into(&params_hash, &mut hashes[..]);
            if hashes.iter().any(|&h| h != params_hash) {
                bail!("ranks hold different parameters");
            }
            let state_hash = state.finalize();
            if rank == 0 {
                println!(
                    "steps {} params {params_hash:08x} state {state_hash:08x} ({})",
                    sharded.steps(),
                    names.join(", ")
                );
            }
        }
    }
    Ok(())
}
