//! The flat parameter space cut into one balanced, aligned range per rank, and the pieces of
//! tensors ("segments") each range covers.

use std::ops::Range;

/// The part of one tensor inside a rank's range: elements `start..end` of tensor `tensor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index of the tensor in the model's list.
    pub tensor: usize,
    /// First element, in the tensor's own indexing.
    pub start: usize,
    /// One past the last element.
    pub end: usize,
    /// Where the segment starts in the flat parameter space.
    pub flat: usize,
}

impl Segment {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the segment is empty (never, for segments a [`Partition`] returns).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// The flat parameter space (every tensor's elements, in order) cut into `ranks` contiguous
/// ranges of about equal size whose boundaries fall on multiples of `align` elements.
///
/// # Examples
/// ```
/// use rmsprop_mpi::Partition;
/// let p = Partition::new(&[100, 50, 6], 2, 16);
/// assert_eq!(p.ranges(), &[0..80, 80..156]);
/// let s = p.segments(1);
/// assert_eq!((s[0].tensor, s[0].start, s[0].end), (0, 80, 100));
/// assert_eq!((s[2].tensor, s[2].start, s[2].end), (2, 0, 6));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    lengths: Vec<usize>,
    ranges: Vec<Range<usize>>,
    align: usize,
}

impl Partition {
    /// Cuts tensors of these lengths into `ranks` ranges (`ranks >= 1`; `align` 0 is taken as 1).
    /// Range `r` starts at `r * total / ranks` rounded to the nearest multiple of `align`, so
    /// ranges differ by at most `align` elements (a range may be empty when there are fewer
    /// aligned blocks than ranks).
    ///
    /// # Panics
    /// When `ranks` is 0.
    pub fn new(lengths: &[usize], ranks: usize, align: usize) -> Self {
        assert!(ranks >= 1, "at least one rank");
        let align = align.max(1);
        let total: usize = lengths.iter().sum();
        let mut bounds = Vec::with_capacity(ranks + 1);
        for r in 0..=ranks {
            let ideal = (total as u128 * r as u128 / ranks as u128) as usize;
            let aligned = ((ideal + align / 2) / align * align).min(total);
            let floor = bounds.last().copied().unwrap_or(0);
            bounds.push(if r == ranks {
                total
            } else {
                aligned.max(floor)
            });
        }
        let ranges = bounds.windows(2).map(|w| w[0]..w[1]).collect();
        Self {
            lengths: lengths.to_vec(),
            ranges,
            align,
        }
    }

    /// Number of ranks.
    pub fn ranks(&self) -> usize {
        self.ranges.len()
    }

    /// The tensors' lengths.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Elements in all.
    pub fn total(&self) -> usize {
        self.lengths.iter().sum()
    }

    /// The alignment of range boundaries.
    pub fn align(&self) -> usize {
        self.align
    }

    /// Every rank's range of the flat space.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// Rank `rank`'s range.
    pub fn range(&self, rank: usize) -> Range<usize> {
        self.ranges[rank].clone()
    }

    /// The non-empty pieces of tensors inside rank `rank`'s range, in tensor order.
    pub fn segments(&self, rank: usize) -> Vec<Segment> {
        let range = self.range(rank);
        let mut out = Vec::new();
        let mut offset = 0;
        for (tensor, &len) in self.lengths.iter().enumerate() {
            let (lo, hi) = (offset.max(range.start), (offset + len).min(range.end));
            if lo < hi {
                out.push(Segment {
                    tensor,
                    start: lo - offset,
                    end: hi - offset,
                    flat: lo,
                });
            }
            offset += len;
        }
        out
    }

    /// How many of rank `rank`'s segments fall in each parameter group, when tensor `t` belongs
    /// to group `groups[t]` (groups numbered from 0, each a contiguous run of tensors, as
    /// [`ParamGroups`](rmsprop::ParamGroups) assigns them): the tensor counts to build a rank's
    /// `ParamGroups` with.
    ///
    /// # Panics
    /// When `groups` does not have one entry per tensor.
    pub fn group_counts(&self, rank: usize, groups: &[usize]) -> Vec<usize> {
        assert_eq!(groups.len(), self.lengths.len(), "one group per tensor");
        let mut counts = vec![0; groups.iter().max().map_or(0, |g| g + 1)];
        for s in self.segments(rank) {
            counts[groups[s.tensor]] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once_balanced_and_aligned() {
        for lengths in [vec![1000], vec![3, 5000, 17, 64, 999], vec![7], vec![]] {
            for ranks in 1..=5 {
                for align in [1, 16, 256] {
                    let p = Partition::new(&lengths, ranks, align);
                    let total: usize = lengths.iter().sum();
                    assert_eq!(p.ranks(), ranks);
                    assert_eq!(p.ranges()[0].start, 0);
                    assert_eq!(p.ranges()[ranks - 1].end, total);
                    for w in p.ranges().windows(2) {
                        assert_eq!(w[0].end, w[1].start);
                        assert_eq!(w[0].end % align, 0, "{lengths:?} {ranks} {align}");
                    }
                    let ideal = total / ranks;
                    for r in p.ranges() {
                        assert!(r.len().abs_diff(ideal) <= align + 1, "{r:?} vs {ideal}");
                    }
                    // Every element of every tensor is in exactly one segment.
                    let mut seen: Vec<Vec<u8>> = lengths.iter().map(|&n| vec![0; n]).collect();
                    for rank in 0..ranks {
                        let mut flat = p.range(rank).start;
                        for s in p.segments(rank) {
                            assert!(!s.is_empty());
                            assert_eq!(s.flat, flat);
                            flat += s.len();
                            for x in &mut seen[s.tensor][s.start..s.end] {
                                *x += 1;
                            }
                        }
                        assert_eq!(flat, p.range(rank).end);
                    }
                    assert!(seen.iter().flatten().all(|&x| x == 1));
                }
            }
        }
    }

    #[test]
    fn group_counts_follow_the_tensors_groups() {
        let p = Partition::new(&[10, 10, 10, 10], 2, 1);
        assert_eq!(p.group_counts(0, &[0, 0, 1, 1]), vec![2, 0]);
        assert_eq!(p.group_counts(1, &[0, 0, 1, 1]), vec![0, 2]);
        let p = Partition::new(&[10, 10, 10, 10], 3, 1);
        // Rank 1 holds 13..26: the end of tensor 1 and the start of tensor 2.
        assert_eq!(p.group_counts(1, &[0, 0, 1, 1]), vec![1, 1]);
    }
}
