//! Kernels: the per-element arithmetic of each optimizer, separate from the bookkeeping.
//!
//! The scalar reference kernels in this module are the specification: readable
//! per-element loops that mirror the documented formulas in each framework's
//! operation order, using only correctly rounded IEEE-754 operations and no
//! fused multiply-add. Faster kernels must reproduce their bits exactly.
//!
//! A kernel is a free function over slices plus a small `Copy` struct of
//! per-step scalars already rounded to the element type: no defaults, no
//! allocation, no I/O, no `Result`.

pub mod rmsprop;
