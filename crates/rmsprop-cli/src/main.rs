//! `rmsprop`: the classic example, and gradient replay against recorded framework runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::sync::atomic::Ordering;

use rmsprop_cli::bench::{self, Workload};
use rmsprop_cli::compare::{self, Experiment};
use rmsprop_cli::progress;
use rmsprop_cli::replay::{Preset, Vector};

/// RMSProp, exactly: the classic example and conformance against PyTorch, Keras, optax, TF1, timm.
///
/// With no command, runs the classic example: f(x, y) = x^2 + y^2 from (5, 4),
/// lr 0.1, rho 0.9, eps 1e-6 outside the root, printing every 20th of 101 epochs.
#[derive(Parser)]
#[command(name = "rmsprop", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the classic example (the default).
    Lesson {
        /// Print every step instead: the gradient, the squared-gradient average v, the
        /// denominator sqrt(v) + eps and the step, for the first --epochs epochs.
        #[arg(long)]
        trace: bool,
        /// Epochs --trace prints.
        #[arg(long, default_value_t = 10, requires = "trace", value_parser = clap::value_parser!(u64).range(1..=101))]
        epochs: u64,
    },
    /// Compare optimizers on one objective from one start: a table, paths over contours, loss curves.
    ///
    /// Either from flags, or from an experiment file (`--config FILE.toml`, see docs/experiments/).
    /// Ctrl-C stops early and keeps what was computed.
    Compare {
        /// An experiment file (TOML); replaces the other flags except --out.
        #[arg(long, conflicts_with_all = ["objective", "optimizers", "lr", "steps", "tolerance", "noise", "seed"])]
        config: Option<PathBuf>,
        /// Objective (see `run`).
        #[arg(long, default_value = "rosenbrock")]
        objective: String,
        /// Optimizers, comma-separated: rmsprop, sgd, momentum, nesterov, adagrad, adam, adamw, adadelta, lion.
        #[arg(long, value_delimiter = ',', default_value = "rmsprop,adam,sgd")]
        optimizers: Vec<String>,
        /// Learning rates, e.g. `rmsprop=0.01,adam=0.05` (others keep their defaults).
        #[arg(long, default_value = "")]
        lr: String,
        /// Steps per optimizer.
        #[arg(long, default_value_t = 500)]
        steps: u64,
        /// "Reached" means f - f_min below this.
        #[arg(long, default_value_t = 1e-3)]
        tolerance: f64,
        /// Standard deviation of Gaussian noise added to every gradient (seeded by --seed).
        #[arg(long, default_value_t = 0.0)]
        noise: f64,
        /// Seed of the gradient noise and of mini-batch order.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Directory for table.md, table.json, trajectories.png/svg, loss.png/svg, step_length.png/svg.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also draw the paths step by step into trajectories.gif (2-D objectives; needs --out).
        #[arg(long, requires = "out")]
        gif: bool,
    },
    /// Every optimizer the other commands, experiment files and the playground know: its options,
    /// their defaults and allowed values (the registry).
    Optimizers {
        /// Print JSON (what the playground's GET /api/optimizers serves) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The playground: a page where you move lr, rho and eps and watch the optimizers run, every
    /// number computed by this library. Prints the URL; Ctrl-C stops it.
    Serve {
        /// Address to listen on (loopback unless told otherwise: the page runs code on request).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port (0: a free one, printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The longest one run may compute, in milliseconds.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        max_compute_ms: u64,
    },
    /// Run the fixed set of experiments behind the claims and write EXPERIMENTS.md with tables and
    /// pictures (default into docs/).
    Report {
        /// Directory for EXPERIMENTS.md and `experiments/<name>/`.
        #[arg(long, default_value = "docs")]
        out: PathBuf,
    },
    /// RMSProp over a grid of decay rates and learning rates, with a heat map of the outcome.
    Sweep {
        /// Objective (see `run`).
        #[arg(long, default_value = "rosenbrock")]
        objective: String,
        /// RMSProp preset whose formulation is swept.
        #[arg(long, value_enum, default_value = "pytorch")]
        preset: Preset,
        /// Decay rates, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0.5,0.9,0.99,0.999")]
        rho: Vec<f64>,
        /// Learning rates, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0.0001,0.001,0.01,0.1")]
        lr: Vec<f64>,
        /// Steps per cell.
        #[arg(long, default_value_t = 1000)]
        steps: u64,
        /// Directory for sweep.md, sweep.json, heatmap.png/svg.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run one optimizer on one objective; save the trajectory (CSV and JSON), with checkpoints.
    ///
    /// Ctrl-C stops the run after the current step and keeps (and checkpoints) what was computed.
    Run {
        /// Objective: sphere, rosenbrock, booth, beale, himmelblau, rastrigin, saddle, ill_conditioned,
        /// badly_scaled, badly_scaled_rotated, space_navigation, quadratic, moving_target, scale_shift,
        /// tanh_chain, deep_linear, tanh_rnn, adding, tanh_mlp, least_squares.
        #[arg(long, default_value = "rosenbrock")]
        objective: String,
        /// Optimizer: rmsprop, sgd, momentum, nesterov, adagrad, adam, adamw, adadelta, lion.
        #[arg(long, default_value = "rmsprop")]
        optimizer: String,
        /// RMSProp preset (default pytorch).
        #[arg(long, value_enum)]
        preset: Option<Preset>,
        /// Learning rate (default: the optimizer's own).
        #[arg(long)]
        lr: Option<f64>,
        /// Total number of steps.
        #[arg(long, default_value_t = 1000)]
        steps: u64,
        /// Starting point, comma-separated (default: the objective's).
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        start: Option<Vec<f64>>,
        /// Directory for trajectory.csv and trajectory.json.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Save a checkpoint (optimizer state and parameters) to this file, atomically.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Checkpoint every this many steps (and at the end).
        #[arg(long, default_value_t = 100)]
        checkpoint_every: u64,
        /// Continue from a checkpoint written by --checkpoint (same optimizer and options).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Standard deviation of Gaussian noise added to every gradient (seeded by --seed).
        #[arg(long, default_value_t = 0.0)]
        noise: f64,
        /// Seed of the gradient noise and of mini-batch order.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Mini-batch size (least_squares only; default the full batch).
        #[arg(long)]
        batch: Option<usize>,
    },
    /// Train a network on real data through the candle adapter: digits-mlp, digits-rnn, adding.
    ///
    /// One run prints a line per epoch and ends with `test accuracy: 0.NNN`. --compare runs
    /// rmsprop, sgd, momentum, adagrad and adam (on the adding problem also graves and
    /// sgd-clipped) over several seeds and draws their curves; --search picks each optimizer's
    /// learning rate on a validation split.
    Train {
        /// The task.
        #[arg(value_enum)]
        task: rmsprop_cli::train::Task,
        /// Optimizer: rmsprop (the default), sgd, momentum, adagrad, adam (any of `rmsprop
        /// optimizers`), graves (RMSProp, Graves' preset) or sgd-clipped (SGD, gradient norm
        /// clipped to 1). With --search: search this one only.
        #[arg(long)]
        optimizer: Option<String>,
        /// Learning rate (default: the one the search picked for this task and optimizer).
        #[arg(long)]
        lr: Option<f64>,
        /// Epochs (default 30; adding 15).
        #[arg(long)]
        epochs: Option<usize>,
        /// Seed of the weights, the data order and generated data.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Save optimizer state and weights here after every epoch (atomically).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Continue from a checkpoint written by --checkpoint (same task, optimizer and seed).
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Bits of optimizer state per element: 32, or 8 (blockwise 8-bit state as bitsandbytes
        /// keeps it; tensors under 4,096 elements stay in 32 bits).
        #[arg(long, default_value_t = 32, value_parser = clap::builder::TypedValueParser::map(clap::builder::PossibleValuesParser::new(["32", "8"]), |s| s.parse::<u8>().unwrap()))]
        state_bits: u8,
        /// Parameter storage: f32, or bf16 (forward and backward in bf16, the optimizer
        /// computing in f32 and rounding to nearest).
        #[arg(long, value_enum, default_value_t = rmsprop_cli::train::ParamDtype::F32)]
        dtype: rmsprop_cli::train::ParamDtype,
        /// Compare the task's optimizers (each with its searched learning rate) over --seeds.
        #[arg(long, conflicts_with_all = ["optimizer", "lr", "checkpoint", "resume", "search"])]
        compare: bool,
        /// Learning-rate search: every optimizer of the task (or --optimizer) over a grid, on a
        /// validation split, seed 0.
        #[arg(long, conflicts_with_all = ["lr", "checkpoint", "resume"])]
        search: bool,
        /// Seeds for --compare.
        #[arg(long, default_value_t = 3)]
        seeds: u64,
        /// Directory for results.md/json and loss/error curves (PNG and SVG) of --compare/--search.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One long RMSProp run in f32 and in bf16 (rounded to nearest, stochastically, and with an
    /// f32 master copy): what reduced precision does to training, with its verdict.
    Precision {
        /// Steps.
        #[arg(long, default_value_t = 3000)]
        steps: usize,
        /// Learning rate.
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// Directory for table.md and loss.png/svg.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure the memory-bandwidth limit of a step and each optimizer's step time against it.
    Bench {
        /// Sizes to run, comma-separated: 2, 1e3, 1e7, 1000x1e4 (1,000 tensors of 1e4).
        /// Default: 2, 1e3, 1e5, 1e6, 1e7, 1e8 (when memory allows), 1000x1e4.
        #[arg(long, value_delimiter = ',', value_parser = Workload::parse)]
        sizes: Option<Vec<Workload>>,
        /// Threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Replay a recorded gradient sequence and report the deviation from the recorded trajectory.
    ///
    /// Exit status: 0 within tolerance (float64: 1e-10 lr; float32: 1e-2 lr, 1e-1 lr centered),
    /// 1 beyond it, 2 for a file that cannot be replayed.
    Replay {
        /// A vector file in the schema of reference/SCHEMA.md.
        file: PathBuf,
        /// Print our whole trajectory in the vector's schema, with the deviations, as JSON.
        #[arg(long)]
        json: bool,
        /// Replay with this preset instead of the one matching the vector's framework.
        #[arg(long, value_enum)]
        preset: Option<Preset>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let lesson = Command::Lesson {
        trace: false,
        epochs: 10,
    };
    match cli.command.unwrap_or(lesson) {
        Command::Lesson { trace, epochs } => {
            if trace {
                print!("{}", rmsprop_cli::lesson::trace_table(epochs as usize));
            } else {
                for line in rmsprop_cli::lesson::lines() {
                    println!("{line}");
                }
            }
            ExitCode::SUCCESS
        }
        Command::Compare {
            config,
            objective,
            optimizers,
            lr,
            steps,
            tolerance,
            noise,
            seed,
            out,
            gif,
        } => {
            let experiment = match &config {
                Some(path) => Experiment::load(path),
                None => {
                    compare::from_flags(&objective, &optimizers, &lr, steps, tolerance, noise, seed)
                }
            };
            let stopped = progress::ctrl_c_flag();
            let stop = || stopped.load(Ordering::SeqCst);
            let result = experiment.and_then(|e| {
                let pb = progress::bar(compare::total_steps(&e), "compare");
                let outcomes = compare::run(&e, &stop, &|n| pb.inc(n))?;
                pb.finish_and_clear();
                if let Some(dir) = &out {
                    compare::write(dir, &e, &outcomes)?;
                    if gif {
                        compare::write_gif(dir, &e, &outcomes)?;
                    }
                }
                Ok((e, outcomes))
            });
            match result {
                Ok((e, outcomes)) => {
                    if stop() {
                        eprintln!("stopped by Ctrl-C: the table holds the steps computed so far");
                    }
                    print!("{}", compare::table(&outcomes, &e));
                    if let Some(dir) = &out {
                        println!("wrote {} into {}", compare::FILES, dir.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Optimizers { json } => {
            if json {
                println!("{:#}", rmsprop_cli::serve::api::optimizers());
            } else {
                print!("{}", rmsprop_cli::registry::table());
            }
            ExitCode::SUCCESS
        }
        Command::Serve {
            host,
            port,
            max_compute_ms,
        } => match rmsprop_cli::serve::serve(
            &host,
            port,
            std::time::Duration::from_millis(max_compute_ms),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Report { out } => {
            let stopped = progress::ctrl_c_flag();
            let stop = || stopped.load(Ordering::SeqCst);
            match rmsprop_cli::report::report(&out, &stop) {
                Ok(path) => {
                    println!("wrote {}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Sweep {
            objective,
            preset,
            rho,
            lr,
            steps,
            out,
        } => {
            let result =
                rmsprop_cli::sweep::sweep(&objective, preset, &rho, &lr, steps).and_then(|cells| {
                    if let Some(dir) = &out {
                        rmsprop_cli::sweep::write(dir, &objective, steps, &rho, &lr, &cells)?;
                    }
                    Ok(cells)
                });
            match result {
                Ok(cells) => {
                    println!("log10(f - f_min) after {steps} steps:");
                    print!("{}", rmsprop_cli::sweep::table(&rho, &lr, &cells));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run {
            objective,
            optimizer,
            preset,
            lr,
            steps,
            start,
            out,
            checkpoint,
            checkpoint_every,
            resume,
            noise,
            seed,
            batch,
        } => {
            let spec = rmsprop_cli::run::RunSpec {
                noise,
                seed,
                batch,
                objective,
                optimizer,
                preset,
                lr,
                steps,
                start,
                checkpoint,
                checkpoint_every,
                resume,
            };
            let stopped = progress::ctrl_c_flag();
            let stop = || stopped.load(Ordering::SeqCst);
            let pb = progress::bar(spec.steps, "run");
            let result = rmsprop_cli::run::run(&spec, &stop, &|n| pb.inc(n)).and_then(|rows| {
                pb.finish_and_clear();
                if let Some(dir) = &out {
                    rmsprop_cli::run::write_trajectory(dir, &spec, &rows)?;
                }
                Ok(rows)
            });
            match result {
                Ok(rows) => {
                    let last = rows.last().expect("at least the start");
                    if stop() {
                        eprintln!("stopped by Ctrl-C after step {}", last.step);
                    }
                    println!(
                        "final: step {}, x = {:?}, f = {:?}",
                        last.step, last.x, last.f
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Precision { steps, lr, out } => {
            if !(lr.is_finite() && lr > 0.0) || steps == 0 {
                eprintln!("error: --lr must be finite and > 0 and --steps at least 1 (got lr {lr}, steps {steps})");
                return ExitCode::from(2);
            }
            let runs = rmsprop_cli::precision::run(steps, lr);
            print!("{}", rmsprop_cli::precision::table(&runs));
            let verdict =
                if rmsprop_cli::precision::holds(&runs, rmsprop_cli::precision::bf16_floor()) {
                    "holds"
                } else {
                    "does not hold"
                };
            println!("verdict: {verdict} ({})", rmsprop_cli::precision::RULE);
            if let Some(dir) = out {
                if let Err(e) = rmsprop_cli::precision::write(&dir, &runs, lr) {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            }
            ExitCode::SUCCESS
        }
        Command::Train {
            task,
            optimizer,
            lr,
            epochs,
            seed,
            checkpoint,
            resume,
            state_bits,
            dtype,
            compare,
            search,
            seeds,
            out,
        } => {
            use rmsprop_cli::train::{self, Split, TrainSpec};
            let stopped = progress::ctrl_c_flag();
            let stop = || stopped.load(Ordering::SeqCst);
            let only = optimizer.clone();
            let mut spec = TrainSpec::new(task, optimizer.as_deref().unwrap_or("rmsprop"), seed);
            spec.lr = lr;
            spec.epochs = epochs;
            spec.checkpoint = checkpoint;
            spec.resume = resume;
            spec.state_bits = state_bits;
            spec.dtype = dtype;
            let result = if compare || search {
                let (seed_list, grid): (Vec<u64>, &[f64]) = if search {
                    spec.split = Split::Validation;
                    (vec![0], train::SEARCH_GRID)
                } else {
                    ((0..seeds.max(1)).collect(), &[])
                };
                let names: Vec<&str> = match (&only, search) {
                    (Some(name), true) => vec![name.as_str()],
                    _ => train::optimizers(task).to_vec(),
                };
                let runs = if search { grid.len() } else { 1 } as u64
                    * seed_list.len() as u64
                    * names.len() as u64;
                let pb = progress::bar(train::total_steps(&spec) * runs, &task.to_string());
                let tick = |n| pb.inc(n);
                let result = if search {
                    train::search(&spec, &names, &stop, &tick).and_then(|(all, best)| {
                        pb.finish_and_clear();
                        println!("{all}");
                        println!("best learning rate by final validation loss:");
                        for (name, lr) in &best {
                            println!("  {name}: {lr}");
                        }
                        if let Some(dir) = &out {
                            std::fs::create_dir_all(dir)?;
                            std::fs::write(dir.join("search.md"), &all)?;
                        }
                        Ok(())
                    })
                } else {
                    train::compare(
                        &spec,
                        train::optimizers(task),
                        &|name| train::default_lr(task, name),
                        &seed_list,
                        &stop,
                        &tick,
                    )
                    .and_then(|summaries| {
                        pb.finish_and_clear();
                        print!("{}", train::table(&summaries, Split::Test));
                        for s in &summaries {
                            for f in &s.failures {
                                eprintln!("{}: {f}", s.optimizer);
                            }
                        }
                        match &out {
                            Some(dir) => train::write(dir, &spec, &seed_list, &summaries),
                            None => Ok(()),
                        }
                    })
                };
                result
            } else {
                let pb = progress::bar(train::total_steps(&spec), &task.to_string());
                let total = spec.epochs();
                let outcome = train::train(&spec, &stop, &|n| pb.inc(n), &mut |e| {
                    pb.suspend(|| {
                        println!(
                            "epoch {}/{total}: train loss {:.4}, test loss {:.4}, test accuracy {:.3}",
                            e.epoch, e.train_loss, e.eval_loss, e.eval_accuracy
                        )
                    })
                });
                pb.finish_and_clear();
                outcome.map(|o| {
                    if stop() {
                        eprintln!("stopped by Ctrl-C: the weights trained so far are kept");
                    }
                    if let Some(last) = o.epochs.last() {
                        println!("test accuracy: {:.3}", last.eval_accuracy);
                    }
                })
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench {
            sizes,
            threads,
            json,
        } => {
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            if threads == 0 {
                eprintln!("error: --threads must be at least 1");
                return ExitCode::from(2);
            }
            let sizes = sizes.unwrap_or_else(bench::default_workloads);
            let report = bench::run(&sizes, threads, |what| eprint!("\rmeasuring {what:<40}"));
            eprintln!();
            if json {
                println!("{}", serde_json::to_string(&report).expect("serializable"));
            } else {
                print!("{}", bench::table(&report));
            }
            ExitCode::SUCCESS
        }
        Command::Replay { file, json, preset } => {
            let result = Vector::load(&file).and_then(|v| v.replay(preset).map(|r| (v, r)));
            match result {
                Ok((vector, report)) => {
                    if json {
                        println!("{}", report.to_json(&vector));
                    } else {
                        println!("{report}");
                    }
                    if report.within_tolerance() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
