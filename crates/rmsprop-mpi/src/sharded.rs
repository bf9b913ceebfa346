//! [`Sharded`]: one optimizer step across MPI ranks, each holding the state of its own range.

use std::time::{Duration, Instant};

use mpi::datatype::{Equivalence, Partition as MpiPartition, PartitionMut};
use mpi::traits::{Communicator, CommunicatorCollectives};
use rmsprop::{Error, Execution, Float, NonFinitePolicy, Optimizer};

use crate::partition::{Partition, Segment};

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every rank stepped its range and the parameters were gathered.
    Stepped,
    /// A non-finite averaged gradient on some rank under [`NonFinitePolicy::Skip`]: no rank
    /// changed anything.
    Skipped,
}

/// Where the time of the steps so far went, on this rank.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    /// Moving gradients and parameters between ranks (all-to-all, all-gather, the scalar
    /// agreements on the non-finite decision and the global norm).
    pub communication: Duration,
    /// Averaging the received gradients, clipping, and the optimizer's own step on the range.
    pub optimizer: Duration,
}

/// An optimizer sharded across the ranks of an MPI communicator (ZeRO stage 1).
///
/// Every rank holds all parameters and computes gradients on its part of the batch. A step:
/// 1. **reduce-scatter**: each rank sends every other rank the part of its gradients in that
///    rank's range (one `MPI_Alltoallv`), then averages the `N` contributions it received for its
///    own range in a fixed order: a pairwise tree over ranks `0..N` (`(g0 + g1) + (g2 + g3)` for
///    4), then a division by `N`. Nothing depends on MPI's choice of reduction algorithm, so runs
///    with the same `N` give the same bits;
/// 2. **agreement**: non-finite values and (optionally) the global gradient norm are decided from
///    one all-gather of a few scalars, combined in rank order, so every rank takes the same
///    decision and no rank steps alone;
/// 3. **step**: the inner optimizer (any [`Optimizer`]: a plain one, a schedule, parameter
///    groups, ...) steps the segments of the rank's range as if they were tensors, so it holds
///    state for `1/N` of the parameters;
/// 4. **all-gather**: the updated ranges are gathered (`MPI_Allgatherv`) into every rank's
///    parameters.
///
/// Given the same averaged gradients, the result equals a single-process step of the inner
/// optimizer on whole tensors bit for bit: every optimizer of the library is element-wise.
pub struct Sharded<T: Float + Equivalence, O: Optimizer<T>, C: Communicator> {
    comm: C,
    partition: Partition,
    segments: Vec<Segment>,
    inner: O,
    policy: NonFinitePolicy,
    clip_norm: Option<f64>,
    /// MPI counts and displacements: every rank's range in the flat space (the partition's),
    /// and this rank's range once per rank in the receive buffer.
    counts: Vec<i32>,
    displs: Vec<i32>,
    recv_counts: Vec<i32>,
    recv_displs: Vec<i32>,
    send: Vec<T>,
    recv: Vec<T>,
    gathered: Vec<T>,
    steps: u64,
    skipped: u64,
    timing: Timing,
}

/// One rank's findings before a step, as the scalars every rank shares.
const REPORT: usize = 5;

impl<T, O, C> Sharded<T, O, C>
where
    T: Float + Equivalence,
    O: Optimizer<T>,
    C: Communicator + CommunicatorCollectives,
{
    /// Shards `inner` over `comm` for tensors of these lengths, with range boundaries on
    /// multiples of `align` elements. The inner optimizer's non-finite screen is switched off
    /// (its execution keeps one thread): this wrapper's [`NonFinitePolicy`] (default `Error`)
    /// decides for all ranks.
    ///
    /// # Examples
    /// See the crate documentation.
    pub fn new(comm: C, lengths: &[usize], align: usize, mut inner: O) -> Self {
        let ranks = comm.size() as usize;
        let partition = Partition::new(lengths, ranks, align);
        let rank = comm.rank() as usize;
        let segments = partition.segments(rank);
        inner.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
        let own = partition.range(rank).len();
        let total = partition.total();
        let counts = partition.ranges().iter().map(|r| r.len() as i32).collect();
        let displs = partition.ranges().iter().map(|r| r.start as i32).collect();
        Self {
            counts,
            displs,
            recv_counts: vec![own as i32; ranks],
            recv_displs: (0..ranks).map(|k| (k * own) as i32).collect(),
            comm,
            partition,
            segments,
            inner,
            policy: NonFinitePolicy::Error,
            clip_norm: None,
            send: vec![T::ZERO; total],
            recv: vec![T::ZERO; own * ranks],
            gathered: vec![T::ZERO; total],
            steps: 0,
            skipped: 0,
            timing: Timing::default(),
        }
    }

    /// Sets what every rank does when any rank's averaged gradient is not finite.
    pub fn with_non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Clips the averaged gradient to a global L2 norm of at most `max_norm` (PyTorch's
    /// `clip_grad_norm_`: scaled by `max_norm / (norm + 1e-6)` when the norm exceeds it), the
    /// norm agreed from one all-gather of each rank's sum of squares, added in rank order.
    pub fn with_clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_norm = Some(max_norm);
        self
    }

    /// The partition of the parameters across ranks.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// This rank's segments: the "tensors" the inner optimizer steps.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The communicator.
    pub fn comm(&self) -> &C {
        &self.comm
    }

    /// The inner optimizer (this rank's shard).
    pub fn inner(&self) -> &O {
        &self.inner
    }

    /// The inner optimizer, mutably (schedules, learning rates).
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.inner
    }

    /// Steps applied.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Steps every rank skipped.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// Where the time of the steps so far went.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Bytes of optimizer state this rank holds (the inner optimizer's buffers).
    pub fn state_bytes(&self) -> usize {
        (0..self.segments.len())
            .map(|i| {
                self.inner
                    .state_buffers(i)
                    .iter()
                    .map(|(_, b)| b.len() * T::BYTES)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Restores counters saved by a checkpoint.
    pub(crate) fn set_counters(&mut self, steps: u64, skipped: u64) {
        self.steps = steps;
        self.skipped = skipped;
    }

    /// Switches the inner optimizer's own screen off again (after a restore).
    pub(crate) fn quiet_inner(&mut self) {
        self.inner
            .set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
    }

    /// One data-parallel step: `grads` are this rank's gradients for every tensor, `params`
    /// every tensor (identical on all ranks). Every rank must call it with tensors of the
    /// partition's lengths.
    ///
    /// # Errors
    /// [`Error::TensorCount`] / [`Error::GradientLength`] / [`Error::StateLength`] for tensors
    /// that do not fit the partition (checked before any communication: every rank refuses
    /// the same way when the shapes are the same everywhere); [`Error::NonFiniteGradient`]
    /// under the `Error` policy, the same on every rank (the lowest rank's finding); the inner
    /// optimizer's error. A refused step changes nothing on any rank.
    pub fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> rmsprop::Result<Outcome> {
        self.check(params, grads)?;
        let ranks = self.partition.ranks();
        let rank = self.comm.rank() as usize;
        let own = self.partition.range(rank);
        let n = own.len();

        // 1. Reduce-scatter: all-to-all of the ranges, then a fixed-order average.
        let mut offset = 0;
        for g in grads {
            self.send[offset..offset + g.len()].copy_from_slice(g);
            offset += g.len();
        }
        let began = Instant::now();
        let (counts, displs) = (&self.counts, &self.displs);
        let (recv_counts, recv_displs) = (&self.recv_counts, &self.recv_displs);
        {
            let send = MpiPartition::new(&self.send[..], &counts[..], &displs[..]);
            let mut recv =
                PartitionMut::new(&mut self.recv[..], &recv_counts[..], &recv_displs[..]);
            self.comm.all_to_all_varcount_into(&send, &mut recv);
        }
        let mut communication = began.elapsed();
        let began = Instant::now();
        pairwise_sum(&mut self.recv, n, ranks);
        let divisor = T::from_f64(ranks as f64);
        for x in &mut self.recv[..n] {
            *x = *x / divisor;
        }
        let mut optimizer = began.elapsed();

        // 2. Agreement on non-finite values and the global norm.
        let mut report = [0.0f64; REPORT];
        if let Some(i) = self.recv[..n].iter().position(|x| !x.is_finite()) {
            let seg = self
                .segments
                .iter()
                .find(|s| s.flat - own.start + s.len() > i)
                .expect("a segment covers every element of the range");
            report[0] = 1.0;
            report[1] = seg.tensor as f64;
            report[2] = (seg.start + i - (seg.flat - own.start)) as f64;
            report[3] = self.recv[i].to_f64();
        }
        if self.clip_norm.is_some() {
            report[4] = self.recv[..n].iter().map(|x| x.to_f64() * x.to_f64()).sum();
        }
        let began = Instant::now();
        let mut all = vec![0.0f64; REPORT * ranks];
        self.comm.all_gather_into(&report[..], &mut all[..]);
        communication += began.elapsed();
        if let Some(r) = all.chunks(REPORT).find(|r| r[0] != 0.0) {
            match self.policy {
                NonFinitePolicy::Error => {
                    self.timing.communication += communication;
                    self.timing.optimizer += optimizer;
                    return Err(Error::NonFiniteGradient {
                        index: r[1] as usize,
                        element: r[2] as usize,
                        value: r[3],
                    });
                }
                NonFinitePolicy::Skip => {
                    self.skipped += 1;
                    self.timing.communication += communication;
                    self.timing.optimizer += optimizer;
                    return Ok(Outcome::Skipped);
                }
                NonFinitePolicy::Propagate => {}
            }
        }
        let began = Instant::now();
        if let Some(max_norm) = self.clip_norm {
            let total: f64 = all.chunks(REPORT).map(|r| r[4]).sum();
            let norm = total.sqrt();
            if norm > max_norm {
                let coef = T::from_f64(max_norm / (norm + 1e-6));
                for x in &mut self.recv[..n] {
                    *x = *x * coef;
                }
            }
        }

        // 3. The inner optimizer steps this rank's segments.
        let mut seg_params: Vec<&mut [T]> = Vec::with_capacity(self.segments.len());
        {
            let mut rest: Vec<Option<&mut [T]>> =
                params.iter_mut().map(|p| Some(&mut **p)).collect();
            for s in &self.segments {
                let whole = rest[s.tensor]
                    .take()
                    .expect("segments of a tensor are one piece");
                seg_params.push(&mut whole[s.start..s.end]);
            }
        }
        let seg_grads: Vec<&[T]> = self
            .segments
            .iter()
            .map(|s| &self.recv[s.flat - own.start..s.flat - own.start + s.len()])
            .collect();
        let result = self.inner.step(&mut seg_params, &seg_grads);
        optimizer += began.elapsed();
        // Every rank learns whether every rank stepped (an inner refusal is the same on all
        // ranks for the same configuration and shapes; if not, no rank gathers).
        let began = Instant::now();
        let ok = [if result.is_ok() { 1u8 } else { 0 }];
        let mut oks = vec![0u8; ranks];
        self.comm.all_gather_into(&ok[..], &mut oks[..]);
        if oks.contains(&0) {
            self.timing.communication += communication + began.elapsed();
            self.timing.optimizer += optimizer;
            result?;
            return Err(Error::InvalidConfig(
                "another rank's optimizer refused the step",
            ));
        }

        // 4. All-gather the updated ranges.
        for (s, p) in self.segments.iter().zip(&seg_params) {
            self.send[s.flat..s.flat + s.len()].copy_from_slice(p);
        }
        drop(seg_params);
        {
            let mut recv = PartitionMut::new(&mut self.gathered[..], &counts[..], &displs[..]);
            self.comm
                .all_gather_varcount_into(&self.send[own.clone()], &mut recv);
        }
        communication += began.elapsed();
        let mut offset = 0;
        for p in params.iter_mut() {
            p.copy_from_slice(&self.gathered[offset..offset + p.len()]);
            offset += p.len();
        }
        self.steps += 1;
        self.timing.communication += communication;
        self.timing.optimizer += optimizer;
        Ok(Outcome::Stepped)
    }

    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> rmsprop::Result<()> {
        let lengths = self.partition.lengths();
        if params.len() != lengths.len() {
            return Err(Error::TensorCount {
                state: lengths.len(),
                params: params.len(),
            });
        }
        if grads.len() != params.len() {
            return Err(Error::GradientCount {
                params: params.len(),
                grads: grads.len(),
            });
        }
        for (index, ((p, g), &len)) in params.iter().zip(grads).zip(lengths).enumerate() {
            if p.len() != len {
                return Err(Error::StateLength {
                    index,
                    params: p.len(),
                    state: len,
                });
            }
            if g.len() != len {
                return Err(Error::GradientLength {
                    index,
                    params: len,
                    grads: g.len(),
                });
            }
        }
        Ok(())
    }
}

/// Sums the `ranks` blocks of `n` elements of `blocks` into the first, pairwise in a fixed
/// tree: `(b0 + b1) + (b2 + b3)`, then `((b0 + b1) + (b2 + b3)) + (b4 + ...)`.
///
/// # Examples
/// ```
/// let mut b = vec![1.0f64, 2.0, 3.0, 4.0, 5.0];
/// rmsprop_mpi::sharded::pairwise_sum(&mut b, 1, 5);
/// assert_eq!(b[0], 15.0);
/// ```
pub fn pairwise_sum<T: Float>(blocks: &mut [T], n: usize, ranks: usize) {
    let mut stride = 1;
    while stride < ranks {
        let mut k = 0;
        while k + stride < ranks {
            let (head, tail) = blocks.split_at_mut((k + stride) * n);
            for (a, b) in head[k * n..(k + 1) * n].iter_mut().zip(&tail[..n]) {
                *a = *a + *b;
            }
            k += 2 * stride;
        }
        stride *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::pairwise_sum;

    #[test]
    fn the_pairwise_order_is_fixed_and_exact_for_equal_power_of_two_inputs() {
        // 4 ranks: (a + b) + (c + d), not ((a + b) + c) + d.
        let (a, b, c, d) = (1e16f64, 1.0, -1e16, 1.0);
        let mut blocks = vec![a, b, c, d];
        pairwise_sum(&mut blocks, 1, 4);
        assert_eq!(blocks[0], (a + b) + (c + d));
        assert_ne!(blocks[0], ((a + b) + c) + d);
        // Identical gradients on 2, 4, 8 ranks average to themselves exactly.
        for ranks in [2usize, 4, 8] {
            let g = [0.1f32, -3.7e-5, 1.234_567e3];
            let mut blocks: Vec<f32> = (0..ranks).flat_map(|_| g).collect();
            pairwise_sum(&mut blocks, 3, ranks);
            let avg: Vec<f32> = blocks[..3].iter().map(|x| x / ranks as f32).collect();
            assert_eq!(avg, g);
        }
    }
}
