//! Optimizers: one generic type, [`Optim`], over every [`Algorithm`]; one file per algorithm
//! with its configuration, presets, validation and [`Algorithm`] implementation.

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod bnb;
pub mod lion;
pub mod rmsprop;
pub mod sgd;

use crate::algorithm::{Algorithm, Layout};
use crate::check::{check_non_negative, check_step_total};
use crate::kernel::Kernel;
use crate::state::{State, StateView, TensorState};
use crate::{Error, Execution, Float, Optimizer, Result};

/// An optimizer: an [`Algorithm`] (its configuration) with its per-tensor state, stepping many
/// tensors at once. [`RmsProp`](crate::RmsProp), [`Adam`](crate::Adam), ... are this type.
///
/// A step checks every tensor, screens the gradients under the
/// [`NonFinitePolicy`](crate::NonFinitePolicy), creates the state on the first step, and runs
/// the kernel selected when the optimizer was built, on the [`Execution`]'s threads. A step that
/// fails or is skipped changes nothing but the skipped-step count.
///
/// # Examples
/// ```
/// use rmsprop::{Optim, Optimizer, SgdConfig};
/// let mut opt: Optim<SgdConfig, f64> = Optim::new(SgdConfig::momentum(0.1, 0.9)).unwrap();
/// let mut x = [1.0];
/// opt.step_single(&mut x, &[2.0]).unwrap();
/// assert_eq!(x, [0.8]);
/// assert_eq!(opt.buffer(0, "momentum_buffer"), Some(&[2.0][..]));
/// ```
#[derive(Clone, Debug)]
pub struct Optim<A: Algorithm, T: Float> {
    config: A,
    layout: Layout,
    kernel: Kernel<T, A::Scalars<T>>,
    /// The scalars, when they do not depend on the step (kept in step with the configuration).
    fixed: Option<A::Scalars<T>>,
    exec: Execution,
    skipped: u64,
    state: State<T>,
}

impl<A: Algorithm, T: Float> Optim<A, T> {
    /// Builds the optimizer after validating `config`, and selects its kernel.
    ///
    /// # Errors
    /// As the configuration's [`Algorithm::validate`].
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{RmsProp, RmsPropConfig};
    /// assert!(RmsProp::<f32>::new(RmsPropConfig::keras()).is_ok());
    /// let err = RmsProp::<f32>::new(RmsPropConfig::keras().with_momentum(1.0)).unwrap_err();
    /// assert!(err.to_string().contains("momentum"));
    /// ```
    pub fn new(config: A) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            layout: config.layout(),
            kernel: config.kernel::<T>(),
            fixed: Self::fixed_scalars(&config),
            config,
            exec: Execution::default(),
            skipped: 0,
            state: State::default(),
        })
    }

    /// The configuration.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{RmsProp, RmsPropConfig};
    /// let opt = RmsProp::<f64>::new(RmsPropConfig::tf1()).unwrap();
    /// assert_eq!(opt.config().initial_square_avg, 1.0);
    /// ```
    pub fn config(&self) -> &A {
        &self.config
    }

    /// Replaces the configuration (validated; the kernel is selected again). The state is kept
    /// when the new configuration keeps the same buffers.
    ///
    /// # Errors
    /// As [`Algorithm::validate`], or [`Error::InvalidConfig`] when state exists and the new
    /// configuration needs other buffers (e.g. momentum switched on mid-run). Nothing changes then.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
    /// let mut opt = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
    /// opt.step_single(&mut [1.0], &[1.0]).unwrap();
    /// opt.set_config(RmsPropConfig::pytorch().with_rho(0.9)).unwrap();
    /// assert!(opt.set_config(RmsPropConfig::pytorch().with_momentum(0.9)).is_err());
    /// assert_eq!(opt.config().rho, 0.9);
    /// ```
    pub fn set_config(&mut self, config: A) -> Result<()> {
        config.validate()?;
        let layout = config.layout();
        if !self.state.tensors.is_empty() && layout != self.layout {
            return Err(Error::InvalidConfig(
                "the new configuration needs other state buffers than the existing state",
            ));
        }
        self.kernel = config.kernel::<T>();
        self.fixed = Self::fixed_scalars(&config);
        self.layout = layout;
        self.config = config;
        Ok(())
    }

    fn fixed_scalars(config: &A) -> Option<A::Scalars<T>> {
        (!config.scalars_depend_on_step()).then(|| config.scalars(1))
    }

    /// The state layout of the configuration.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The state: step counts and per-tensor buffers.
    pub fn state(&self) -> &State<T> {
        &self.state
    }

    /// Replaces the state (e.g. one restored from a checkpoint) after checking it against the
    /// layout.
    ///
    /// # Errors
    /// [`Error::StateBuffer`] when a tensor lacks a buffer or one has the wrong length; the
    /// current state is kept then.
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{Optimizer, RmsProp, RmsPropConfig};
    /// let mut a = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
    /// a.step_single(&mut [1.0], &[0.5]).unwrap();
    /// let mut b = RmsProp::<f64>::new(RmsPropConfig::pytorch()).unwrap();
    /// b.set_state(a.state().clone()).unwrap();
    /// assert_eq!(a.state(), b.state());
    /// ```
    pub fn set_state(&mut self, state: State<T>) -> Result<()> {
        let specs = self.layout.buffers();
        for (index, t) in state.tensors.iter().enumerate() {
            for (k, spec) in specs.iter().enumerate() {
                let len = t.buffers.get(k).map_or(0, Vec::len);
                if t.buffers.get(k).is_none() || len != t.len {
                    return Err(Error::StateBuffer {
                        index,
                        buffer: spec.name,
                        len,
                        expected: t.len,
                    });
                }
            }
            if t.buffers.len() > specs.len() {
                return Err(Error::StateBuffer {
                    index,
                    buffer: "(extra buffer)",
                    len: t.buffers.len(),
                    expected: specs.len(),
                });
            }
        }
        self.state = state;
        Ok(())
    }

    /// Buffer `name` of tensor `tensor` (`None` before the first step or for a buffer this
    /// configuration does not keep).
    pub fn buffer(&self, tensor: usize, name: &str) -> Option<&[T]> {
        let k = self.layout.index_of(name)?;
        Some(self.state.tensors.get(tensor)?.buffers[k].as_slice())
    }

    /// The kernel's scalars for a tensor at step `t` (1 for the first step).
    ///
    /// # Examples
    /// ```
    /// use rmsprop::{RmsProp, RmsPropConfig};
    /// let opt = RmsProp::<f32>::new(RmsPropConfig::optax().with_bias_correction(true)).unwrap();
    /// assert_eq!(opt.scalars(1).bias_correction, 1.0 / (1.0 - 0.9f32));
    /// ```
    pub fn scalars(&self, t: u64) -> A::Scalars<T> {
        self.config.scalars(t)
    }

    /// The execution settings.
    pub fn execution(&self) -> &Execution {
        &self.exec
    }

    /// One step of tensors whose state lives outside the optimizer, such as a `torch.optim`
    /// state dict's tensors: the same checks, non-finite screen, kernel and threads as
    /// [`step`](Optimizer::step), on borrowed buffers (one [`StateView`] per tensor, its buffers
    /// in the [`layout`](Optim::layout)'s order, starting at the layout's initial values). The
    /// optimizer's own state is neither used nor changed; its step and skipped-step counts are.
    ///
    /// Returns `Ok(true)` when the step was applied (each view's step count advanced), and
    /// `Ok(false)` when the [`NonFinitePolicy::Skip`](crate::NonFinitePolicy::Skip) policy
    /// skipped it.
    ///
    /// # Errors
    /// As [`step`](Optimizer::step), plus [`Error::TensorCount`] when there is not one view per
    /// tensor and [`Error::StateBuffer`] naming a buffer that is missing, extra or of the wrong
    /// length. Nothing is changed then.
    ///
    /// # Examples
    /// PyTorch's momentum buffer kept by the caller:
    /// ```
    /// use rmsprop::{RmsProp, RmsPropConfig, StateView};
    /// let mut opt = RmsProp::<f64>::new(RmsPropConfig::pytorch().with_momentum(0.9)).unwrap();
    /// let (mut p, mut v, mut b) = ([1.0], [0.0], [0.0]);
    /// let mut views = [StateView::new(0, vec![&mut v[..], &mut b[..]])];
    /// opt.step_external(&mut [&mut p[..]], &[&[2.0][..]], &mut views).unwrap();
    /// assert!(p[0] < 1.0 && v[0] > 0.0 && b[0] > 0.0);
    /// let err = opt.step_external(&mut [&mut p[..]], &[&[2.0][..]], &mut []).unwrap_err();
    /// assert!(err.to_string().contains("the step got 1"), "{err}");
    /// ```
    pub fn step_external(
        &mut self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [StateView<'_, T>],
    ) -> Result<bool> {
        if states.len() != params.len() {
            return Err(Error::TensorCount {
                state: states.len(),
                params: params.len(),
            });
        }
        let total = check_step_total(params, grads, 0, |_| 0)?;
        let specs = self.layout.buffers();
        for (index, (p, view)) in params.iter().zip(states.iter()).enumerate() {
            for (k, spec) in specs.iter().enumerate() {
                let len = view.buffers.get(k).map_or(0, |b| b.len());
                if len != p.len() || view.buffers.get(k).is_none() {
                    return Err(Error::StateBuffer {
                        index,
                        buffer: spec.name,
                        len,
                        expected: p.len(),
                    });
                }
            }
            if view.buffers.len() > specs.len() {
                return Err(Error::StateBuffer {
                    index,
                    buffer: "(extra buffer)",
                    len: view.buffers.len(),
                    expected: specs.len(),
                });
            }
        }
        if !self.exec.screen_total(grads, total)? {
            self.skipped = self.skipped.saturating_add(1);
            return Ok(false);
        }
        self.run(params, grads, states, total);
        Ok(true)
    }

    /// The step's checks ([`Optimizer::check`]), returning how many elements it covers.
    fn check_total(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<usize> {
        let tensors = &self.state.tensors;
        check_step_total(params, grads, tensors.len(), |i| tensors[i].len)
    }

    /// Sets the count of skipped steps (restoring a checkpoint).
    pub fn set_skipped_steps(&mut self, skipped: u64) {
        self.skipped = skipped;
    }

    fn new_tensor_state(&self, len: usize) -> TensorState<T> {
        TensorState {
            step: 0,
            len,
            buffers: self
                .layout
                .buffers()
                .iter()
                .map(|b| vec![T::from_f64(b.init); len])
                .collect(),
        }
    }
}

impl<A: Algorithm, T: Float> Optim<A, T> {
    /// One checked, screened step of `total` elements: lazy state, then the kernel over every
    /// tensor.
    #[inline]
    fn apply(&mut self, params: &mut [&mut [T]], grads: &[&[T]], total: usize) {
        if self.state.tensors.is_empty() {
            self.state.tensors = params
                .iter()
                .map(|p| self.new_tensor_state(p.len()))
                .collect();
        }
        let Self {
            config,
            layout,
            kernel,
            fixed,
            exec,
            state,
            ..
        } = self;
        drive(
            exec,
            config,
            fixed.as_ref(),
            *kernel,
            layout.align(),
            params,
            grads,
            &mut state.tensors,
            total,
        );
        state.steps = state.steps.saturating_add(1);
    }

    /// The driver over borrowed `states`, then the step count.
    fn run(
        &mut self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [StateView<'_, T>],
        total: usize,
    ) {
        drive(
            &self.exec,
            &self.config,
            self.fixed.as_ref(),
            self.kernel,
            self.layout.align(),
            params,
            grads,
            states,
            total,
        );
        self.state.steps = self.state.steps.saturating_add(1);
    }
}

/// The kernel over every tensor of `states` (owned or borrowed), on the execution's threads.
#[allow(clippy::too_many_arguments)]
#[inline]
fn drive<A: Algorithm, T: Float, St: crate::state::Slot<T>>(
    exec: &Execution,
    config: &A,
    fixed: Option<&A::Scalars<T>>,
    kernel: Kernel<T, A::Scalars<T>>,
    align: usize,
    params: &mut [&mut [T]],
    grads: &[&[T]],
    states: &mut [St],
    total: usize,
) {
    exec.step_all(
        params,
        grads,
        states,
        total,
        fixed,
        |t| match fixed {
            Some(s) => *s,
            None => config.scalars::<T>(t),
        },
        kernel,
        align,
    );
}

impl<A: Algorithm, T: Float> Optimizer<T> for Optim<A, T> {
    fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        let total = self.check_total(params, grads)?;
        if !self.exec.screen_total(grads, total)? {
            self.skipped = self.skipped.saturating_add(1);
            return Ok(());
        }
        self.apply(params, grads, total);
        Ok(())
    }

    fn step_screened(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        let total = self.check_total(params, grads)?;
        self.apply(params, grads, total);
        Ok(())
    }

    fn screen_gradients(&self, grads: &[&[T]]) -> Result<bool> {
        self.exec.screen(grads)
    }

    fn name(&self) -> &'static str {
        self.config.name()
    }

    fn check(&self, params: &[&mut [T]], grads: &[&[T]]) -> Result<()> {
        self.check_total(params, grads).map(drop)
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_non_negative("lr", lr)?;
        self.config.set_lr(lr);
        self.fixed = Self::fixed_scalars(&self.config);
        Ok(())
    }

    fn steps(&self) -> u64 {
        self.state.steps
    }

    fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    fn reset(&mut self) {
        self.state = State::default();
    }

    fn set_execution(&mut self, execution: Execution) {
        self.exec = execution;
    }

    fn state_buffers(&self, index: usize) -> Vec<(&'static str, &[T])> {
        let Some(t) = self.state.tensors.get(index) else {
            return Vec::new();
        };
        self.layout
            .buffers()
            .iter()
            .zip(&t.buffers)
            .map(|(spec, b)| (spec.name, b.as_slice()))
            .collect()
    }
}
