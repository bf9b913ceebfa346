//! The library behind the `rmsprop` command: the classic example, numpy-style printing and
//! gradient replay against recorded framework trajectories.
#![deny(missing_docs)]

pub mod bench;
pub mod compare;
pub mod lesson;
pub mod numpy_fmt;
pub mod plot;
pub mod precision;
pub mod progress;
pub mod registry;
pub mod replay;
pub mod report;
pub mod run;
pub mod runner;
pub mod serve;
pub mod sweep;
pub mod train;
