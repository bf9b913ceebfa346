//! `rmsprop`: the classic example, and gradient replay against recorded framework runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rmsprop_cli::bench::{self, Workload};
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
    Lesson,
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
    match cli.command.unwrap_or(Command::Lesson) {
        Command::Lesson => {
            for line in rmsprop_cli::lesson::lines() {
                println!("{line}");
            }
            ExitCode::SUCCESS
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
