//! Gradient replay: run a recorded gradient sequence through our RMSProp and measure how far
//! our trajectory is from the one a framework recorded.
//!
//! The vectors follow `reference/SCHEMA.md` (schema_version 1): hyperparameters in neutral
//! names (`normalized`), the initial parameters, the raw gradient of every step and the
//! parameters after every step. Replay is
//! `params = initial_params; for k in 0..steps { step(params, gradients[k]); compare(params, trajectory[k]) }`,
//! then the final state is compared in the framework's own convention.
//!
//! One file per job: the framework presets (`preset.rs`), the schema's records and errors
//! (`schema.rs`), reading a vector file (`file.rs`), the optimizer a vector asks for
//! (`setup.rs`), stepping through it (`steps.rs`) and the deviations found (`report.rs`).

mod file;
mod preset;
mod report;
mod schema;
mod setup;
mod steps;

pub use preset::*;
pub use report::*;
pub use schema::*;
pub use setup::*;
