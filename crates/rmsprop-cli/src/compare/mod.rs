//! `rmsprop compare`: several optimizers on one objective from one start — a table and pictures.
//!
//! A comparison is an [`Experiment`]: built from the command's flags or read from a TOML file
//! (`rmsprop compare --config FILE`), so that it can be checked in and rerun.
//!
//! One file per job: experiment files and verdicts (`experiment.rs`), the run loop's
//! recorder (`simulate.rs`), runs and their measures (`outcome.rs`), tables and pictures
//! (`output.rs`).

mod experiment;
mod outcome;
mod output;
mod simulate;

pub use experiment::*;
pub use outcome::*;
pub use output::*;
pub use simulate::*;
