//! An optimizer's state as plain data: what the driver steps and checkpoints save.

/// The state of one tensor: its step count, its length and the buffers its algorithm's
/// [`Layout`](crate::algorithm::Layout) declares, in that order.
///
/// # Examples
/// ```
/// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
/// let mut opt = RmsProp::<f64>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
/// opt.step_single(&mut [1.0, 2.0], &[0.5, 0.5]).unwrap();
/// let t = &opt.state().tensors[0];
/// assert_eq!((t.step, t.len, t.buffers.len()), (1, 2, 2));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorState<T> {
    /// Steps this tensor has taken.
    pub step: u64,
    /// Number of parameters.
    pub len: usize,
    /// The layout's buffers, each `len` long.
    pub buffers: Vec<Vec<T>>,
}

/// An optimizer's whole state as plain data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State<T> {
    /// Successful steps.
    pub steps: u64,
    /// One entry per tensor (empty before the first step).
    pub tensors: Vec<TensorState<T>>,
}
