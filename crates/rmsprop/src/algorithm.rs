//! What an optimizer *is*: an [`Algorithm`]. One generic type, [`Optim`](crate::Optim), does
//! everything else once, for every algorithm.
//!
//! An algorithm is its configuration type, which says
//! - how it is checked ([`validate`](Algorithm::validate)) and what its learning rate is;
//! - the state one tensor needs, as a [`Layout`]: named buffers, each with its initial value;
//! - the per-step scalars it derives from the configuration and a tensor's step count
//!   ([`scalars`](Algorithm::scalars)), already rounded to the element type;
//! - its kernels: the scalar [`reference`](Algorithm::reference), which is the specification,
//!   and the fast [`kernel`](Algorithm::kernel), selected once for the configuration's variant.
//!
//! [`Optim`](crate::Optim) then does the checks, the non-finite screen, the lazy state, the
//! threaded driver, the [`Optimizer`](crate::Optimizer) trait, checkpoints (with the
//! `checkpoint` feature) and, through them, the adapters. Adding an optimizer is a kernel file,
//! a file with its configuration and this trait, and a line where it is exported.
//!
//! # State layout
//!
//! A tensor's state is a step count and the buffers its layout names, in that order; the
//! driver hands the kernel exactly those buffers, split into chunks at the same offsets as the
//! parameters. Today every buffer holds the element type `T` and has the tensor's length. The
//! layout is where the next storage kinds plug in: a buffer kind (`T`, bf16, or 8-bit codes
//! with one absmax per block) beside the name, and [`Layout::align`], the granularity every
//! chunk boundary keeps (a quantization block: 256 elements for bitsandbytes-style state), so
//! the threaded driver never splits a block. Kernels receive their buffers as a list, so a new
//! kind changes the list's element type, not every optimizer.

use crate::kernel::Kernel;
use crate::{Float, Result};

/// One named state buffer of a tensor and the value it starts at.
///
/// # Examples
/// ```
/// use rmsprop::algorithm::BufferSpec;
/// let b = BufferSpec::new("square_avg", 0.0);
/// assert_eq!(b.name, "square_avg");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BufferSpec {
    /// The buffer's name: how checkpoints and [`state_buffers`](crate::Optimizer::state_buffers)
    /// call it (PyTorch's names where PyTorch has the buffer).
    pub name: &'static str,
    /// The initial value of every element, rounded to the element type when the state is made.
    pub init: f64,
}

impl BufferSpec {
    /// A buffer called `name` starting at `init`.
    pub const fn new(name: &'static str, init: f64) -> Self {
        Self { name, init }
    }
}

/// The state an algorithm keeps per tensor, for one configuration.
///
/// # Examples
/// ```
/// use rmsprop::{Algorithm, RmsPropConfig};
/// let layout = RmsPropConfig::pytorch().with_centered(true).layout();
/// let names: Vec<_> = layout.buffers().iter().map(|b| b.name).collect();
/// assert_eq!(names, ["square_avg", "grad_avg"]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    buffers: Vec<BufferSpec>,
    align: usize,
}

impl Layout {
    /// A layout with these buffers (at most [`MAX_BUFFERS`](crate::kernel::MAX_BUFFERS)).
    ///
    /// # Panics
    /// With more than [`MAX_BUFFERS`](crate::kernel::MAX_BUFFERS) buffers (a bug in an algorithm).
    pub fn new(buffers: Vec<BufferSpec>) -> Self {
        assert!(
            buffers.len() <= crate::kernel::MAX_BUFFERS,
            "at most MAX_BUFFERS state buffers"
        );
        Self { buffers, align: 1 }
    }

    /// The buffers, in the order the kernels take them.
    pub fn buffers(&self) -> &[BufferSpec] {
        &self.buffers
    }

    /// The granularity chunk boundaries keep (1: any element).
    pub fn align(&self) -> usize {
        self.align
    }

    /// The position of buffer `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.buffers.iter().position(|b| b.name == name)
    }
}

/// An optimization algorithm, implemented by its configuration type (see the
/// [module docs](self)).
///
/// # Examples
/// Everything an algorithm declares, for RMSProp's PyTorch preset with momentum:
/// ```
/// use rmsprop::{Algorithm, RmsPropConfig};
/// let c = RmsPropConfig::pytorch().with_momentum(0.9);
/// assert_eq!(RmsPropConfig::KIND, "rmsprop");
/// assert_eq!(c.layout().buffers().len(), 2);
/// assert_eq!(c.scalars::<f32>(1).lr, 0.01f32);
/// assert_eq!(c.variant(), "order=torch+eps=outside+momentum=lr_outside");
/// ```
pub trait Algorithm: Clone + core::fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The algorithm's stable identity (checkpoint files): `"rmsprop"`, `"adam"`, ...
    const KIND: &'static str;

    /// The per-step scalars of one tensor's update, in the element type.
    type Scalars<T: Float>: Copy + core::fmt::Debug + Send + Sync;

    /// A short name for this configuration (`"adamw"` for Adam with decoupled decay, ...).
    fn name(&self) -> &'static str {
        Self::KIND
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`](crate::Error::InvalidHyperparameter) naming the field,
    /// its value and the allowed range.
    fn validate(&self) -> Result<()>;

    /// The learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate (already checked finite and `>= 0`).
    fn set_lr(&mut self, lr: f64);

    /// The state one tensor needs under this configuration.
    fn layout(&self) -> Layout;

    /// The structural options that select the kernel, in stable names joined by `+`
    /// (informative: checkpoints record it beside the full configuration).
    fn variant(&self) -> String;

    /// The kernel's scalars for a tensor at step `step` (1 for its first step).
    fn scalars<T: Float>(&self, step: u64) -> Self::Scalars<T>;

    /// Whether [`scalars`](Algorithm::scalars) depends on the step (bias corrections, a decaying
    /// rate, a first step of its own). When it does not, an optimizer computes the scalars once
    /// per configuration instead of once per tensor and step. The default, `true`, is always
    /// correct.
    fn scalars_depend_on_step(&self) -> bool {
        true
    }

    /// The fast kernel for this configuration's variant: chosen here, once, when an optimizer
    /// is built; it must give the [`reference`](Algorithm::reference)'s bits exactly.
    fn kernel<T: Float>(&self) -> Kernel<T, Self::Scalars<T>>;

    /// The scalar reference kernel: the specification, a plain per-element loop.
    fn reference<T: Float>(
        scalars: &Self::Scalars<T>,
        params: &mut [T],
        grads: &[T],
        buffers: &mut [&mut [T]],
    );
}
