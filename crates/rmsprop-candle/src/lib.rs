//! [`candle_nn::Optimizer`] for this project's RMSProp (every variant and preset) and its family
//! (SGD, momentum, Nesterov, Adagrad, Adam/AdamW), over candle [`Var`]s on the CPU, f32 or f64.
//!
//! A step runs the library's fused kernels directly on the variables' memory (candle's in-place
//! op API), not as chains of candle tensor ops: one pass per tensor, no temporary tensors. The
//! numbers are the core library's, bit for bit (`tests/adapter.rs`).
//!
//! Beyond candle's trait: learning-rate schedules ([`rmsprop::schedule::Scheduled`] is an optimizer like
//! any other), parameter groups ([`rmsprop::ParamGroups`]), gradient clipping by global norm
//! ([`CandleOptimizer::with_clip_grad_norm`]) and saving/loading the optimizer state with the
//! parameters in the project's checkpoint format ([`CandleOptimizer::save`]).
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use candle_nn::Optimizer;
//! use rmsprop::RmsPropConfig;
//! use rmsprop_candle::CandleRmsProp;
//!
//! # fn main() -> candle_core::Result<()> {
//! let w = Var::from_vec(vec![5.0f64, 4.0], 2, &Device::Cpu)?;
//! let mut opt = CandleRmsProp::<f64>::new(vec![w.clone()], RmsPropConfig::pytorch().with_lr(0.1))?;
//! for _ in 0..100 {
//!     let loss = w.as_tensor().sqr()?.sum_all()?; // f(x, y) = x² + y²
//!     opt.backward_step(&loss)?;
//! }
//! assert!(w.as_tensor().sqr()?.sum_all()?.to_scalar::<f64>()? < 1e-2);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use std::cell::RefCell;
use std::marker::PhantomData;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var};
use rmsprop::blockwise::Blockwise8;
use rmsprop::checkpoint::{self, CheckpointError, Checkpointable};
use rmsprop::mixed::{Half, Mixed, MixedOptions};
use rmsprop::storage::{Param, StorageCheckpoint, StorageOptimizer};
use rmsprop::{Adadelta, Adagrad, Adam, Algorithm, Float, Lion, Optim, Optimizer, RmsProp, Sgd};

/// The element types the adapter steps, matched against candle's CPU storage: `f32` and `f64`
/// (with any [`Optimizer`]) and `bf16` and `f16` (with a [`StorageOptimizer`]: [`Mixed`] or
/// [`Blockwise8`], computing in `f32`).
pub trait CandleElem: candle_core::WithDType {
    /// The storage's elements when they are `Self`.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut Vec<Self>>;
    /// The storage's elements when they are `Self`.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
}

macro_rules! candle_elem {
    ($t:ty, $variant:ident) => {
        impl CandleElem for $t {
            fn slice_mut(s: &mut CpuStorage) -> Option<&mut Vec<Self>> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice(s: &CpuStorage) -> Option<&[Self]> {
                match s {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

candle_elem!(f32, F32);
candle_elem!(f64, F64);
candle_elem!(half::bf16, BF16);
candle_elem!(half::f16, F16);

/// The floats the full-precision adapter steps: `f32` and `f64`.
pub trait CandleFloat: Float + CandleElem {}

impl CandleFloat for f32 {}
impl CandleFloat for f64 {}

/// An optimizer of the family built from its configuration (what candle's `Optimizer::new`
/// needs).
pub trait FromConfig<T: Float>: Checkpointable<T> + Sized {
    /// The configuration type.
    type Config;
    /// Validates the configuration and builds the optimizer.
    ///
    /// # Errors
    /// The library's validation error, naming the bad hyperparameter.
    fn from_config(config: Self::Config) -> Result<Self, rmsprop::Error>;
}

/// Every optimizer of the library, whatever its algorithm: `CandleOptimizer<Optim<A, T>, T>`
/// is a `candle_nn::Optimizer` configured by `A`.
impl<A, T> FromConfig<T> for Optim<A, T>
where
    A: Algorithm,
    T: Float,
    Optim<A, T>: Checkpointable<T>,
{
    type Config = A;
    fn from_config(config: A) -> Result<Self, rmsprop::Error> {
        Optim::new(config)
    }
}

/// Any optimizer of this project stepping candle variables in place.
pub struct CandleOptimizer<O, T: 'static> {
    vars: Vec<Var>,
    opt: O,
    clip: Option<f64>,
    clip_buffers: Vec<Vec<T>>,
    /// Kept between steps so that a step allocates nothing once warm: the (variable, gradient)
    /// pairs, the addresses of their locked memory, and the slice lists handed to the optimizer
    /// (all empty between steps).
    scratch: Scratch<T>,
    /// Why this optimizer cannot step its variables (a floating-point variable of another
    /// dtype), said by every step instead of skipping the variable.
    refused: Option<String>,
    _t: PhantomData<T>,
}

/// Reusable buffers of a step (see [`CandleOptimizer`]); empty between steps.
struct Scratch<T: 'static> {
    pairs: Vec<(Tensor, Tensor)>,
    /// `(param address, param length, grad address, grad length)` per variable, filled while every
    /// storage is locked. Addresses, not pointers, so that the optimizer stays `Send`.
    raw: RefCell<Vec<(usize, usize, usize, usize)>>,
    params: Vec<&'static mut [T]>,
    grads: Vec<&'static [T]>,
}

impl<T: 'static> Default for Scratch<T> {
    fn default() -> Self {
        Self {
            pairs: Vec::new(),
            raw: RefCell::new(Vec::new()),
            params: Vec::new(),
            grads: Vec::new(),
        }
    }
}

/// A step's body: called with every variable's memory and its gradient's.
type StepFn<'a, T> = dyn FnMut(&mut [&mut [T]], &[&[T]]) -> Result<(), rmsprop::Error> + 'a;

impl<T: CandleElem> Scratch<T> {
    /// Locks every variable (for writing) and its gradient (for reading) from `grads`, and
    /// runs `step` on their memory with all the locks held.
    fn run(
        &mut self,
        vars: &[Var],
        grads: &GradStore,
        step: &mut StepFn<'_, T>,
    ) -> candle_core::Result<()> {
        self.pairs.clear();
        for (i, v) in vars.iter().enumerate() {
            let g = grads.get(v.as_tensor()).ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "rmsprop-candle: variable {i} (shape {:?}) has no gradient: every variable given to the optimizer must take part in the loss",
                    v.shape()
                ))
            })?;
            self.pairs.push((v.as_tensor().clone(), g.contiguous()?));
        }
        self.raw.borrow_mut().clear();
        let error: RefCell<Option<rmsprop::Error>> = RefCell::new(None);
        let lists = RefCell::new((
            std::mem::take(&mut self.params),
            std::mem::take(&mut self.grads),
        ));
        let finish = |raw: &[(usize, usize, usize, usize)]| {
            let mut lists = lists.borrow_mut();
            let (params_cache, grads_cache) = &mut *lists;
            let mut params: Vec<&mut [T]> = relabel(std::mem::take(params_cache));
            let mut grads: Vec<&[T]> = relabel_shared(std::mem::take(grads_cache));
            for &(p, p_len, g, g_len) in raw {
                // SAFETY: each address and length was taken from the slice of a storage whose
                // lock an enclosing `Level` frame still holds (write lock for the variable, read
                // lock for the gradient) for as long as this call runs; the variables' storages
                // are distinct (candle's in-place op refuses to lock one storage twice), and the
                // slices do not outlive this closure (the lists are emptied below).
                unsafe {
                    params.push(std::slice::from_raw_parts_mut(p as *mut T, p_len));
                    grads.push(std::slice::from_raw_parts(g as *const T, g_len));
                }
            }
            if let Err(e) = step(&mut params, &grads) {
                *error.borrow_mut() = Some(e);
            }
            *params_cache = relabel(params);
            *grads_cache = relabel_shared(grads);
        };
        let finish = RefCell::new(finish);
        let level = Level {
            index: 0,
            pairs: &self.pairs,
            raw: &self.raw,
            finish: &finish,
        };
        let outcome = level.descend::<T>();
        let (params, grads) = lists.into_inner();
        self.params = params;
        self.grads = grads;
        self.raw.borrow_mut().clear();
        self.pairs.clear();
        outcome?;
        match error.into_inner() {
            Some(e) => Err(wrap(e)),
            None => Ok(()),
        }
    }
}

/// An empty vector of shorter-lived slices, reusing `v`'s allocation (the in-place `collect`
/// of an emptied vector keeps its buffer; no element crosses the lifetimes).
fn relabel<'b, X: ?Sized>(mut v: Vec<&mut X>) -> Vec<&'b mut X> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("emptied above"))
        .collect()
}

/// As [`relabel`], for shared slices.
fn relabel_shared<'b, X: ?Sized>(mut v: Vec<&X>) -> Vec<&'b X> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("emptied above"))
        .collect()
}

/// RMSProp over candle variables.
pub type CandleRmsProp<T> = CandleOptimizer<RmsProp<T>, T>;
/// SGD (plain, momentum, Nesterov) over candle variables.
pub type CandleSgd<T> = CandleOptimizer<Sgd<T>, T>;
/// Adagrad over candle variables.
pub type CandleAdagrad<T> = CandleOptimizer<Adagrad<T>, T>;
/// Adam and AdamW over candle variables.
pub type CandleAdam<T> = CandleOptimizer<Adam<T>, T>;
/// Adadelta over candle variables.
pub type CandleAdadelta<T> = CandleOptimizer<Adadelta<T>, T>;
/// Lion over candle variables.
pub type CandleLion<T> = CandleOptimizer<Lion<T>, T>;

fn wrap(e: impl std::error::Error + Send + Sync + 'static) -> candle_core::Error {
    candle_core::Error::wrap(e)
}

impl<O: Optimizer<T>, T: CandleFloat> CandleOptimizer<O, T> {
    /// Steps `vars` with an already built optimizer: a [`rmsprop::schedule::Scheduled`] one,
    /// [`rmsprop::ParamGroups`], a boxed one. Integer variables are left alone, as candle's
    /// optimizers do; a floating-point variable of another dtype than `T` (bf16 or f16 for an
    /// `f32` optimizer) is not skipped silently: every step refuses, naming it (candle's
    /// `Optimizer::new` refuses at once).
    pub fn with_optimizer(vars: Vec<Var>, opt: O) -> Self {
        let (vars, refused) = own_dtype::<T>(vars);
        Self {
            vars,
            opt,
            clip: None,
            clip_buffers: Vec::new(),
            scratch: Scratch::default(),
            refused,
            _t: PhantomData,
        }
    }

    /// Scales the gradients so that their global L2 norm is at most `max_norm` before each step
    /// (PyTorch's `clip_grad_norm_`); the gradients themselves are not modified.
    pub fn with_clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip = Some(max_norm);
        self
    }

    /// The variables, in step order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.opt
    }

    /// The wrapped optimizer, mutably (to change a group's learning rate, say).
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.opt
    }

    /// One step with the gradients of `grads`: every variable needs one.
    ///
    /// # Errors
    /// A variable without a gradient, a non-CPU or non-contiguous tensor, or what the optimizer
    /// rejects (non-finite gradients, ...): then nothing has changed.
    pub fn step_with(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        if let Some(why) = &self.refused {
            return Err(candle_core::Error::Msg(why.clone()));
        }
        let clip = self.clip;
        let buffers = &mut self.clip_buffers;
        let opt = &mut self.opt;
        self.scratch
            .run(&self.vars, grads, &mut |params, grads| match clip {
                None => opt.step(params, grads),
                Some(max_norm) => {
                    buffers.resize_with(grads.len(), Vec::new);
                    for (b, g) in buffers.iter_mut().zip(grads) {
                        b.clear();
                        b.extend_from_slice(g);
                    }
                    let mut views: Vec<&mut [T]> =
                        buffers.iter_mut().map(|b| b.as_mut_slice()).collect();
                    rmsprop::clip::clip_grad_norm(&mut views, max_norm, 2.0);
                    let views: Vec<&[T]> = buffers.iter().map(|b| b.as_slice()).collect();
                    opt.step(params, &views)
                }
            })
    }

    /// Saves the optimizer's state and the variables' values, atomically, in the project's
    /// checkpoint format (safetensors with a checksum).
    ///
    /// # Errors
    /// When a variable cannot be read or the file cannot be written.
    pub fn save(&self, path: &Path) -> candle_core::Result<()>
    where
        O: Checkpointable<T>,
    {
        refuse(&self.refused)?;
        let values = values::<T>(&self.vars)?;
        let views: Vec<&[T]> = values.iter().map(|v| v.as_slice()).collect();
        checkpoint::save(path, &self.opt, Some(&views)).map_err(wrap)
    }

    /// Loads a checkpoint written by [`CandleOptimizer::save`]: the optimizer's state, and the
    /// variables' values when it holds them. Nothing changes when it cannot be loaded.
    ///
    /// # Errors
    /// A missing, corrupt or mismatched checkpoint ([`CheckpointError`], wrapped).
    pub fn load(&mut self, path: &Path) -> candle_core::Result<()>
    where
        O: Checkpointable<T>,
    {
        refuse(&self.refused)?;
        load_into(
            &self.vars,
            path,
            &mut self.opt,
            |o| checkpoint::to_bytes(o, None),
            |o, bytes| checkpoint::from_bytes(o, bytes),
        )
    }
}

/// The refusal of an adapter holding a variable of another float dtype (a save or load would
/// leave it out), as an error.
fn refuse(refused: &Option<String>) -> candle_core::Result<()> {
    match refused {
        Some(why) => Err(candle_core::Error::Msg(why.clone())),
        None => Ok(()),
    }
}

/// The variables' values, flattened.
fn values<T: candle_core::WithDType>(vars: &[Var]) -> candle_core::Result<Vec<Vec<T>>> {
    vars.iter()
        .map(|v| v.as_tensor().flatten_all()?.to_vec1::<T>())
        .collect()
}

/// Loads the checkpoint at `path` into `opt` (`restore`, which returns the file's parameters)
/// and `vars`, all or nothing: when the parameters do not fit the variables, `opt` is put back
/// from `backup` (taken before) and nothing changes.
fn load_into<T: candle_core::WithDType, O: ?Sized>(
    vars: &[Var],
    path: &Path,
    opt: &mut O,
    backup: impl FnOnce(&O) -> Result<Vec<u8>, CheckpointError>,
    restore: impl Fn(&mut O, &[u8]) -> Result<Option<Vec<Vec<T>>>, CheckpointError>,
) -> candle_core::Result<()> {
    let bytes = std::fs::read(path).map_err(wrap)?;
    let before = backup(opt).map_err(wrap)?;
    let Some(params) = restore(opt, &bytes).map_err(wrap)? else {
        return Ok(());
    };
    let fits = params.len() == vars.len()
        && params
            .iter()
            .zip(vars)
            .all(|(p, v)| p.len() == v.elem_count());
    if !fits {
        // Put the optimizer back as it was: all or nothing.
        restore(opt, &before).map_err(wrap)?;
        return Err(wrap(CheckpointError::Tensor {
            name: "params".to_string(),
            problem: format!(
                "{}: the parameters do not match the variables' shapes",
                path.display()
            ),
        }));
    }
    for (p, v) in params.into_iter().zip(vars) {
        let t = Tensor::from_vec(p, v.shape(), v.device())?;
        v.set(&t)?;
    }
    Ok(())
}

impl<O: FromConfig<T>, T: CandleFloat> candle_nn::Optimizer for CandleOptimizer<O, T> {
    type Config = O::Config;

    fn new(vars: Vec<Var>, config: O::Config) -> candle_core::Result<Self> {
        let opt = Self::with_optimizer(vars, O::from_config(config).map_err(wrap)?);
        match &opt.refused {
            Some(why) => Err(candle_core::Error::Msg(why.clone())),
            None => Ok(opt),
        }
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_with(grads)
    }

    fn learning_rate(&self) -> f64 {
        self.opt.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        // candle's trait cannot report an error; an invalid rate leaves the old one.
        let _ = self.opt.set_learning_rate(lr);
    }
}

/// Half-precision (`bf16`/`f16`) candle variables stepped in place by a [`StorageOptimizer`]:
/// [`Mixed`] (`f32` or half state, optional `f32` master copy, stochastic rounding) or
/// [`Blockwise8`] (8-bit state). The update is computed in `f32` and rounded into the variables.
///
/// # Examples
/// ```
/// use candle_core::{DType, Device, Tensor, Var};
/// use candle_nn::Optimizer;
/// use half::bf16;
/// use rmsprop::RmsPropConfig;
/// use rmsprop_candle::CandleHalf;
///
/// # fn main() -> candle_core::Result<()> {
/// let w = Var::from_tensor(&Tensor::new(&[5.0f32, 4.0], &Device::Cpu)?.to_dtype(DType::BF16)?)?;
/// let mut opt = CandleHalf::<_, bf16>::new(vec![w.clone()], RmsPropConfig::pytorch().with_lr(0.1))?;
/// for _ in 0..100 {
///     let loss = w.as_tensor().to_dtype(DType::F32)?.sqr()?.sum_all()?;
///     opt.backward_step(&loss)?;
/// }
/// let loss = w.as_tensor().to_dtype(DType::F32)?.sqr()?.sum_all()?.to_scalar::<f32>()?;
/// assert!(loss < 1e-2);
/// # Ok(())
/// # }
/// ```
pub struct CandleHalf<O, P: 'static> {
    vars: Vec<Var>,
    opt: O,
    scratch: Scratch<P>,
    refused: Option<String>,
}

impl<O: StorageOptimizer<P>, P: Param + CandleElem> CandleHalf<O, P> {
    /// Steps the `P` variables among `vars` with `opt`. Integer variables are left alone; a
    /// floating-point variable of another dtype makes every step refuse, naming it.
    pub fn with_optimizer(vars: Vec<Var>, opt: O) -> Self {
        let (vars, refused) = own_dtype::<P>(vars);
        Self {
            vars,
            opt,
            scratch: Scratch::default(),
            refused,
        }
    }

    /// The variables, in step order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The wrapped optimizer.
    pub fn inner(&self) -> &O {
        &self.opt
    }

    /// The wrapped optimizer, mutably.
    pub fn inner_mut(&mut self) -> &mut O {
        &mut self.opt
    }

    /// One step with the gradients of `grads` (of the variables' dtype): every variable needs
    /// one.
    ///
    /// # Errors
    /// As [`CandleOptimizer::step_with`]: then nothing has changed.
    pub fn step_with(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        if let Some(why) = &self.refused {
            return Err(candle_core::Error::Msg(why.clone()));
        }
        let opt = &mut self.opt;
        self.scratch.run(&self.vars, grads, &mut |params, grads| {
            opt.step(params, grads)
        })
    }

    /// Backpropagates `loss` and steps (what `candle_nn::Optimizer::backward_step` does, for
    /// every storage).
    ///
    /// # Errors
    /// As [`CandleHalf::step_with`], or when `loss` cannot be backpropagated.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.step_with(&grads)
    }

    /// Saves the optimizer's state and the variables' values (in their own dtype: `BF16`,
    /// `F16` or `F32`) in one file, atomically, in the storage's checkpoint format
    /// ([`Mixed`] or [`Blockwise8`] files, with a checksum).
    ///
    /// # Errors
    /// When a variable cannot be read or the file cannot be written.
    ///
    /// # Examples
    /// ```
    /// use candle_core::{DType, Device, Tensor, Var};
    /// use half::bf16;
    /// use rmsprop::blockwise::Blockwise8;
    /// use rmsprop::RmsPropConfig;
    /// use rmsprop_candle::CandleHalf;
    ///
    /// # fn main() -> candle_core::Result<()> {
    /// let var = || -> candle_core::Result<Var> {
    ///     Var::from_tensor(&Tensor::new(&[5.0f32, 4.0], &Device::Cpu)?.to_dtype(DType::BF16)?)
    /// };
    /// let eight = || Blockwise8::<RmsPropConfig, bf16>::new(RmsPropConfig::pytorch().with_lr(0.1), 0).unwrap();
    /// let (w, other) = (var()?, var()?);
    /// let mut opt = CandleHalf::with_optimizer(vec![w.clone()], eight());
    /// opt.backward_step(&w.as_tensor().to_dtype(DType::F32)?.sqr()?.sum_all()?)?;
    /// let path = std::env::temp_dir().join(format!("half-doc-{}.safetensors", std::process::id()));
    /// opt.save(&path)?;
    /// let mut again = CandleHalf::with_optimizer(vec![other.clone()], eight());
    /// again.load(&path)?;
    /// assert_eq!(other.as_tensor().to_vec1::<bf16>()?, w.as_tensor().to_vec1::<bf16>()?);
    /// assert_eq!(again.inner().steps(), 1);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub fn save(&self, path: &Path) -> candle_core::Result<()>
    where
        O: StorageCheckpoint<P>,
    {
        refuse(&self.refused)?;
        let values = values::<P>(&self.vars)?;
        let views: Vec<&[P]> = values.iter().map(|v| v.as_slice()).collect();
        let bytes = self.opt.checkpoint_bytes(Some(&views)).map_err(wrap)?;
        checkpoint::write_atomic(path, &bytes).map_err(wrap)
    }

    /// Loads a checkpoint written by [`CandleHalf::save`]: the optimizer's state, and the
    /// variables' values when it holds them. Nothing changes when it cannot be loaded.
    ///
    /// # Errors
    /// A missing, corrupt or mismatched checkpoint ([`CheckpointError`], wrapped).
    pub fn load(&mut self, path: &Path) -> candle_core::Result<()>
    where
        O: StorageCheckpoint<P>,
    {
        refuse(&self.refused)?;
        load_into(
            &self.vars,
            path,
            &mut self.opt,
            |o| o.checkpoint_bytes(None),
            |o, bytes| o.restore_bytes(bytes),
        )
    }
}

/// `candle_nn::Optimizer` for half variables with `f32` state ([`MixedOptions::default`]); build
/// other storage with [`CandleHalf::with_optimizer`].
impl<A: Algorithm, H: Half + CandleElem> candle_nn::Optimizer for CandleHalf<Mixed<A, H>, H> {
    type Config = A;

    fn new(vars: Vec<Var>, config: A) -> candle_core::Result<Self> {
        let opt = Mixed::new(config, MixedOptions::default()).map_err(wrap)?;
        let opt = Self::with_optimizer(vars, opt);
        match &opt.refused {
            Some(why) => Err(candle_core::Error::Msg(why.clone())),
            None => Ok(opt),
        }
    }

    fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_with(grads)
    }

    fn learning_rate(&self) -> f64 {
        self.opt.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        // candle's trait cannot report an error; an invalid rate leaves the old one.
        let _ = self.opt.set_learning_rate(lr);
    }
}

/// Half variables with 8-bit state.
pub type CandleBlockwise8<A, P> = CandleHalf<Blockwise8<A, P>, P>;

/// The variables of dtype `E` among `vars` (integer variables dropped), and why a step must
/// refuse when a floating-point variable has another dtype.
fn own_dtype<E: CandleElem>(vars: Vec<Var>) -> (Vec<Var>, Option<String>) {
    let dtype = E::DTYPE;
    let refused = vars
        .iter()
        .enumerate()
        .find(|(_, v)| v.dtype().is_float() && v.dtype() != dtype)
        .map(|(i, v)| {
            format!(
                "rmsprop-candle: variable {i} (shape {:?}) is {:?}, but this optimizer steps {dtype:?} variables; \
                 give each dtype its own optimizer (CandleOptimizer for f32/f64, CandleHalf for bf16/f16)",
                v.shape(),
                v.dtype()
            )
        });
    (
        vars.into_iter().filter(|v| v.dtype() == dtype).collect(),
        refused,
    )
}

type Finish<'f> = RefCell<dyn FnMut(&[(usize, usize, usize, usize)]) + 'f>;

/// One level of the nested in-place ops: locks variable `index` and its gradient, records their
/// memory, and descends to the next; the innermost level runs the step with every storage locked.
/// Linear in the number of variables (each level pushes one entry); as deep as it, on a stack
/// that grows on demand.
struct Level<'p, 'f> {
    index: usize,
    pairs: &'p [(Tensor, Tensor)],
    raw: &'p RefCell<Vec<(usize, usize, usize, usize)>>,
    finish: &'f Finish<'f>,
}

impl Level<'_, '_> {
    fn descend<T: CandleElem>(&self) -> candle_core::Result<()> {
        match self.pairs.get(self.index) {
            Some((param, grad)) => param.inplace_op2(grad, &Typed::<T>(self, PhantomData)),
            None => {
                let raw = self.raw.borrow();
                (self.finish.borrow_mut())(&raw);
                Ok(())
            }
        }
    }
}

/// A level with its element type (candle's op trait is not generic).
struct Typed<'l, 'p, 'f, T>(&'l Level<'p, 'f>, PhantomData<T>);

impl<T: CandleElem> InplaceOp2 for Typed<'_, '_, '_, T> {
    fn name(&self) -> &'static str {
        "rmsprop-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (Some((pa, pb)), Some((ga, gb))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("rmsprop-candle: variables and gradients must be contiguous")
        };
        let (Some(p), Some(g)) = (T::slice_mut(s1), T::slice(s2)) else {
            candle_core::bail!(
                "rmsprop-candle: a variable or gradient is not {:?}",
                <T as candle_core::WithDType>::DTYPE
            )
        };
        let (p, g) = (&mut p[pa..pb], &g[ga..gb]);
        self.0.raw.borrow_mut().push((
            p.as_mut_ptr() as usize,
            p.len(),
            g.as_ptr() as usize,
            g.len(),
        ));
        let next = Level {
            index: self.0.index + 1,
            ..*self.0
        };
        // One frame per variable: grow the stack on demand (a fresh segment when less than
        // 256 KiB is left), so thousands of variables do not overflow a thread's stack.
        stacker::maybe_grow(256 * 1024, 4 * 1024 * 1024, || next.descend::<T>())
    }
}

/// The README's examples, run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
