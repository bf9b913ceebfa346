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

/// One tensor's state held outside an optimizer (another framework's buffers, such as a
/// `torch.optim` state dict's tensors), borrowed for one
/// [`step_external`](crate::Optim::step_external): the tensor's step count and its buffers, in
/// the layout's order.
///
/// # Examples
/// ```
/// use rmsprop::{RmsProp, RmsPropConfig, StateView};
/// let mut opt = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
/// let (mut p, mut square_avg) = ([1.0, 2.0], [0.0, 0.0]);
/// let mut views = [StateView::new(0, vec![&mut square_avg[..]])];
/// assert!(opt.step_external(&mut [&mut p[..]], &[&[0.5, 0.5][..]], &mut views).unwrap());
/// assert_eq!(views[0].step, 1);
/// ```
#[derive(Debug)]
pub struct StateView<'a, T> {
    /// Steps this tensor has taken (advanced by a step that is applied).
    pub step: u64,
    /// The layout's buffers, each as long as the tensor.
    pub buffers: Vec<&'a mut [T]>,
}

impl<'a, T> StateView<'a, T> {
    /// A tensor's state at `step` with these buffers.
    pub fn new(step: u64, buffers: Vec<&'a mut [T]>) -> Self {
        Self { step, buffers }
    }
}

/// What the driver steps: a step count and buffers, owned or borrowed.
pub(crate) trait Slot<T>: Send {
    /// The step count.
    fn step_mut(&mut self) -> &mut u64;
    /// The buffers as the list a kernel takes, and how many there are.
    fn buffer_list(&mut self) -> ([&mut [T]; crate::kernel::MAX_BUFFERS], usize);
}

fn list<T, B: AsMut<[T]>>(buffers: &mut [B]) -> ([&mut [T]; crate::kernel::MAX_BUFFERS], usize) {
    let mut list: [&mut [T]; crate::kernel::MAX_BUFFERS] = Default::default();
    let n = buffers.len();
    for (slot, b) in list.iter_mut().zip(buffers.iter_mut()) {
        *slot = b.as_mut();
    }
    (list, n)
}

impl<T: Send> Slot<T> for TensorState<T> {
    fn step_mut(&mut self) -> &mut u64 {
        &mut self.step
    }
    fn buffer_list(&mut self) -> ([&mut [T]; crate::kernel::MAX_BUFFERS], usize) {
        list(&mut self.buffers)
    }
}

impl<T: Send> Slot<T> for StateView<'_, T> {
    fn step_mut(&mut self) -> &mut u64 {
        &mut self.step
    }
    fn buffer_list(&mut self) -> ([&mut [T]; crate::kernel::MAX_BUFFERS], usize) {
        list(&mut self.buffers)
    }
}
