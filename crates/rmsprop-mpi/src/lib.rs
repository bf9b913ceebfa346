//! Data-parallel training with sharded optimizer state (ZeRO stage 1) over MPI, for every
//! optimizer of the [`rmsprop`] crate.
//!
//! `N` ranks each hold all parameters and compute gradients on their part of a batch.
//! [`Sharded`] cuts the flat parameter space into `N` balanced, aligned ranges
//! ([`Partition`]); a step reduce-scatters the gradients (each rank receives the average of
//! its range, summed in a fixed order), steps only its range with any [`rmsprop::Optimizer`] —
//! so each rank holds the optimizer state of `1/N` of the parameters — and all-gathers the
//! updated ranges. [`shards`] writes one checkpoint file per rank plus a manifest and loads
//! them onto any number of ranks.
//!
//! ```no_run
//! use rmsprop::{RmsProp, RmsPropConfig};
//! use rmsprop_mpi::Sharded;
//!
//! let universe = mpi::initialize().unwrap();
//! let lengths = [1000, 10];
//! let inner = RmsProp::<f32>::new(RmsPropConfig::pytorch()).unwrap();
//! let mut opt = Sharded::new(universe.world(), &lengths, 64, inner);
//! let (mut w, mut b) = (vec![0.5f32; 1000], vec![0.0f32; 10]);
//! let (gw, gb) = (vec![0.1f32; 1000], vec![0.1f32; 10]); // this rank's gradients
//! opt.step(&mut [&mut w, &mut b], &[&gw, &gb]).unwrap();
//! ```
//!
//! Run under `mpirun -np N` (as root: `mpirun --allow-run-as-root --oversubscribe -np N`).

pub mod partition;
pub mod sharded;
pub mod shards;

pub use partition::{Partition, Segment};
pub use sharded::{Outcome, Sharded, Timing};
