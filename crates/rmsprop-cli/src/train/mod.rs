//! `rmsprop train`: RMSProp and its family on real networks through the candle adapter — an MLP
//! and a GRU on the UCI digits, and a GRU on the adding problem.
//!
//! Everything is seeded: initial weights (our own generator, not candle's unseeded one), the
//! order of the training set in each epoch (a permutation per (seed, epoch)) and the adding
//! problem's sequences, so a run is reproducible and a resumed run continues exactly.
//!
//! One file per job: the data (`data.rs`), the networks (`nets.rs`), one training run
//! (`run.rs`), and comparisons and learning-rate searches over runs (`comparison.rs`).

mod comparison;
mod data;
mod nets;
mod run;

pub use comparison::*;
pub use data::*;
pub use nets::*;
pub use run::*;
