//! `rmsprop`: the classic example, and gradient replay against recorded framework runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
