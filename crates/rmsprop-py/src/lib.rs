//! Python bindings: `rmsprop.Optimizer`, one of the library's optimizers (RMSProp and its
//! family) stepping lists of float32 or float64 numpy arrays in place, through their memory.
//!
//! A configuration is the Rust configuration itself: a preset, then keyword overrides with the
//! Rust field names and the enums' stable names (`eps_placement="inside"`), checked by the same
//! validation. Every error reaches Python as `ValueError` or `TypeError` with the library's
//! message, and changes nothing.

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rmsprop::checkpoint::{self, Checkpointable, Snapshot, TensorSnapshot};
use rmsprop::{
    AdadeltaConfig, AdagradConfig, AdamConfig, Algorithm, Execution, Float, LionConfig,
    NonFinitePolicy, Optim, RmsPropConfig, SgdConfig, StateView,
};
use serde_json::Value;

/// The optimizers and their presets: `(kind, [(preset, configuration as JSON)])`, the first
/// preset being the default.
fn presets(kind: &str) -> Option<Vec<(&'static str, Value)>> {
    fn json<C: serde::Serialize>(c: C) -> Value {
        serde_json::to_value(c).expect("configurations serialize")
    }
    Some(match kind {
        "rmsprop" => vec![
            ("pytorch", json(RmsPropConfig::pytorch())),
            ("keras", json(RmsPropConfig::keras())),
            ("tf1", json(RmsPropConfig::tf1())),
            ("optax", json(RmsPropConfig::optax())),
            ("timm_tf", json(RmsPropConfig::timm_tf())),
            ("graves", json(RmsPropConfig::graves())),
            ("lesson", json(RmsPropConfig::lesson())),
        ],
        "sgd" => vec![("pytorch", json(SgdConfig::pytorch()))],
        "adagrad" => vec![
            ("pytorch", json(AdagradConfig::pytorch())),
            ("optax", json(AdagradConfig::optax())),
        ],
        "adam" => vec![
            ("pytorch", json(AdamConfig::pytorch())),
            ("optax", json(AdamConfig::optax())),
        ],
        "adamw" => vec![
            ("pytorch", json(AdamConfig::pytorch_adamw())),
            ("optax", json(AdamConfig::optax_adamw())),
        ],
        "adadelta" => vec![
            ("pytorch", json(AdadeltaConfig::pytorch())),
            ("optax", json(AdadeltaConfig::optax())),
        ],
        "lion" => vec![("optax", json(LionConfig::optax()))],
        _ => return None,
    })
}

const KINDS: &str = "rmsprop, sgd, adagrad, adam, adamw, adadelta, lion";

type Pair = (Box<dyn Engine<f32>>, Box<dyn Engine<f64>>);

/// Both element types of one configuration.
fn build<C>(config: Value) -> Result<Pair, String>
where
    C: Algorithm + serde::Serialize + serde::de::DeserializeOwned,
{
    let c: C = serde_json::from_value(config).map_err(|e| e.to_string())?;
    let a = Optim::<C, f32>::new(c.clone()).map_err(|e| e.to_string())?;
    let b = Optim::<C, f64>::new(c).map_err(|e| e.to_string())?;
    Ok((Box::new(a), Box::new(b)))
}

/// One optimizer of the library, for float32 or float64 arrays (fixed by the first step).
#[pyclass(unsendable, module = "rmsprop._rmsprop")]
struct Optimizer {
    kind: String,
    config: Value,
    f32: Box<dyn Engine<f32>>,
    f64: Box<dyn Engine<f64>>,
    dtype: Option<&'static str>,
    threads: usize,
    non_finite: NonFinitePolicy,
}

impl Optimizer {
    /// The execution settings this optimizer's engines run with.
    fn execution(&self) -> PyResult<Execution> {
        let exec = if self.threads <= 1 {
            Execution::sequential()
        } else {
            shared_threads(self.threads)?
        };
        Ok(exec.with_non_finite(self.non_finite))
    }

    fn apply_execution(&mut self) -> PyResult<()> {
        let exec = self.execution()?;
        self.f32.set_execution(exec.clone());
        self.f64.set_execution(exec);
        Ok(())
    }
}

/// Execution settings on `threads` threads, one thread pool per count for the whole process
/// (optimizers built per hyperparameter set, as the drop-ins do, share it).
fn shared_threads(threads: usize) -> PyResult<Execution> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static POOLS: OnceLock<Mutex<HashMap<usize, Execution>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(exec) = pools.get(&threads) {
        return Ok(exec.clone());
    }
    let exec = Execution::threads(threads).map_err(value_error)?;
    pools.insert(threads, exec.clone());
    Ok(exec)
}

fn value_error(e: impl ToString) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// What the bindings need of an optimizer: checkpoints, plus steps of state held by the caller
/// (the `torch.optim` drop-ins keep their state in torch tensors) and the layout's buffers.
trait Engine<T: Float>: Checkpointable<T> {
    fn step_external(
        &mut self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [StateView<'_, T>],
    ) -> rmsprop::Result<bool>;
    /// The state buffers a tensor needs, in the kernels' order, with their initial values.
    fn buffer_specs(&self) -> Vec<(&'static str, f64)>;
}

impl<A, T> Engine<T> for Optim<A, T>
where
    A: Algorithm,
    T: Float,
    Optim<A, T>: Checkpointable<T>,
{
    fn step_external(
        &mut self,
        params: &mut [&mut [T]],
        grads: &[&[T]],
        states: &mut [StateView<'_, T>],
    ) -> rmsprop::Result<bool> {
        Optim::step_external(self, params, grads, states)
    }

    fn buffer_specs(&self) -> Vec<(&'static str, f64)> {
        self.layout()
            .buffers()
            .iter()
            .map(|b| (b.name, b.init))
            .collect()
    }
}

/// Every array of `arrays` as an array of `T`, or a `TypeError` naming the first that is not.
fn typed<'a, 'py, T: Float + numpy::Element>(
    arrays: &'a [Bound<'py, PyAny>],
    what: &str,
) -> PyResult<Vec<&'a Bound<'py, PyArrayDyn<T>>>> {
    let dtype = T::DTYPE;
    arrays
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.downcast::<PyArrayDyn<T>>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{what}[{i}]: expected a {dtype} numpy array like params[0]"
                ))
            })
        })
        .collect()
}

/// Borrows every array of `arrays` for writing, as element type `T`.
fn writers<'py, T: Float + numpy::Element>(
    arrays: &[Bound<'py, PyAny>],
    what: &str,
) -> PyResult<Vec<PyReadwriteArrayDyn<'py, T>>> {
    typed::<T>(arrays, what)?
        .into_iter()
        .enumerate()
        .map(|(i, array)| {
            array.try_readwrite().map_err(|e| {
                PyValueError::new_err(format!(
                    "{what}[{i}]: cannot be written in place ({e}): read-only, or passed twice"
                ))
            })
        })
        .collect()
}

/// Borrows every array of `arrays` for reading, as element type `T`.
fn readers<'py, T: Float + numpy::Element>(
    arrays: &[Bound<'py, PyAny>],
    what: &str,
) -> PyResult<Vec<PyReadonlyArrayDyn<'py, T>>> {
    typed::<T>(arrays, what)?
        .into_iter()
        .enumerate()
        .map(|(i, array)| {
            array
                .try_readonly()
                .map_err(|e| PyValueError::new_err(format!("{what}[{i}]: cannot be read ({e})")))
        })
        .collect()
}

/// The writers' memory as slices (each array C-contiguous).
fn mut_slices<'a, T: Float + numpy::Element>(
    writers: &'a mut [PyReadwriteArrayDyn<'_, T>],
    what: &str,
) -> PyResult<Vec<&'a mut [T]>> {
    writers
        .iter_mut()
        .enumerate()
        .map(|(i, w)| {
            w.as_slice_mut()
                .map_err(|_| PyTypeError::new_err(format!("{what}[{i}]: not C-contiguous")))
        })
        .collect()
}

/// The readers' memory as slices (each array C-contiguous).
fn slices<'a, T: Float + numpy::Element>(
    readers: &'a [PyReadonlyArrayDyn<'_, T>],
    what: &str,
) -> PyResult<Vec<&'a [T]>> {
    readers
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.as_slice()
                .map_err(|_| PyTypeError::new_err(format!("{what}[{i}]: not C-contiguous")))
        })
        .collect()
}

/// Whether `params[0]` is an array of `T` (an empty list is).
fn is_of<T: Float + numpy::Element>(params: &[Bound<'_, PyAny>]) -> bool {
    params
        .first()
        .is_none_or(|p| p.downcast::<PyArrayDyn<T>>().is_ok())
}

fn count_check(params: usize, grads: usize) -> PyResult<()> {
    if params != grads {
        return Err(value_error(format!(
            "{params} parameter arrays but {grads} gradient arrays"
        )));
    }
    Ok(())
}

/// Steps `opt` on `params` with `grads` if every array has element type `T`; `Ok(false)` when the
/// first parameter is of another type.
fn step_as<T: Float + numpy::Element>(
    opt: &mut dyn Engine<T>,
    params: &[Bound<'_, PyAny>],
    grads: &[Bound<'_, PyAny>],
) -> PyResult<bool> {
    if !is_of::<T>(params) {
        return Ok(false);
    }
    count_check(params.len(), grads.len())?;
    let mut w = writers::<T>(params, "params")?;
    let r = readers::<T>(grads, "grads")?;
    let mut p = mut_slices(&mut w, "params")?;
    let g = slices(&r, "grads")?;
    opt.step(&mut p, &g).map_err(value_error)?;
    Ok(true)
}

/// One step with state held by the caller if every array has element type `T`: `None` when the
/// first parameter is of another type, else whether the step was applied.
fn step_external_as<T: Float + numpy::Element>(
    opt: &mut dyn Engine<T>,
    params: &[Bound<'_, PyAny>],
    grads: &[Bound<'_, PyAny>],
    steps: &[u64],
    buffers: &[Vec<Bound<'_, PyAny>>],
) -> PyResult<Option<bool>> {
    if !is_of::<T>(params) {
        return Ok(None);
    }
    count_check(params.len(), grads.len())?;
    if steps.len() != params.len() || buffers.len() != params.len() {
        return Err(value_error(format!(
            "{} parameter arrays but {} step counts and {} buffer lists",
            params.len(),
            steps.len(),
            buffers.len()
        )));
    }
    let mut w = writers::<T>(params, "params")?;
    let r = readers::<T>(grads, "grads")?;
    let mut bw = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| writers::<T>(b, &format!("buffers[{i}]")))
        .collect::<PyResult<Vec<_>>>()?;
    let mut p = mut_slices(&mut w, "params")?;
    let g = slices(&r, "grads")?;
    let mut views = Vec::with_capacity(bw.len());
    for (i, (b, &step)) in bw.iter_mut().zip(steps).enumerate() {
        views.push(StateView::new(
            step,
            mut_slices(b, &format!("buffers[{i}]"))?,
        ));
    }
    let applied = opt
        .step_external(&mut p, &g, &mut views)
        .map_err(value_error)?;
    Ok(Some(applied))
}

#[pymethods]
impl Optimizer {
    /// `Optimizer(kind, preset=None, options="{}")`: the preset (the first listed when `None`)
    /// with the JSON object `options` overriding its fields.
    #[new]
    #[pyo3(signature = (kind, preset=None, options="{}"))]
    fn new(kind: &str, preset: Option<&str>, options: &str) -> PyResult<Self> {
        let table = presets(kind).ok_or_else(|| {
            value_error(format!("unknown optimizer `{kind}`: choose one of {KINDS}"))
        })?;
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        let mut config = match preset {
            None => table[0].1.clone(),
            Some(p) => table
                .iter()
                .find(|(n, _)| *n == p)
                .map(|(_, c)| c.clone())
                .ok_or_else(|| {
                    value_error(format!(
                        "unknown preset `{p}` for {kind}: choose one of {}",
                        names.join(", ")
                    ))
                })?,
        };
        let overrides: Value = serde_json::from_str(options).map_err(value_error)?;
        let Value::Object(overrides) = overrides else {
            return Err(value_error("options must be a JSON object"));
        };
        let fields = config.as_object_mut().expect("configurations are objects");
        for (key, value) in overrides {
            if !fields.contains_key(&key) {
                let mut allowed: Vec<&String> = fields.keys().collect();
                allowed.sort();
                let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                return Err(value_error(format!(
                    "unknown option `{key}` for {kind}: options are {}",
                    allowed.join(", ")
                )));
            }
            fields.insert(key, value);
        }
        let built = match kind {
            "rmsprop" => build::<RmsPropConfig>(config.clone()),
            "sgd" => build::<SgdConfig>(config.clone()),
            "adagrad" => build::<AdagradConfig>(config.clone()),
            "adam" | "adamw" => build::<AdamConfig>(config.clone()),
            "adadelta" => build::<AdadeltaConfig>(config.clone()),
            _ => build::<LionConfig>(config.clone()),
        };
        let (f32, f64) = built.map_err(value_error)?;
        Ok(Self {
            kind: kind.to_string(),
            config,
            f32,
            f64,
            dtype: None,
            threads: 1,
            non_finite: NonFinitePolicy::Error,
        })
    }

    /// One step of tensors whose state the caller holds: `buffers[i]` are tensor `i`'s state
    /// arrays in the order of `buffer_specs`, `steps[i]` the steps it has taken. Updates
    /// parameters and buffers in place and returns whether the step was applied (`False` when
    /// the `skip` policy skipped it); the caller advances its step counts then.
    fn step_external(
        &mut self,
        params: Vec<Bound<'_, PyAny>>,
        grads: Vec<Bound<'_, PyAny>>,
        steps: Vec<u64>,
        buffers: Vec<Vec<Bound<'_, PyAny>>>,
    ) -> PyResult<bool> {
        let order: [&'static str; 2] = match self.dtype {
            Some("float64") => ["float64", "float32"],
            _ => ["float32", "float64"],
        };
        for dtype in order {
            let applied = if dtype == "float64" {
                step_external_as::<f64>(self.f64.as_mut(), &params, &grads, &steps, &buffers)?
            } else {
                step_external_as::<f32>(self.f32.as_mut(), &params, &grads, &steps, &buffers)?
            };
            if let Some(applied) = applied {
                return Ok(applied);
            }
        }
        Err(PyTypeError::new_err(
            "params[0]: expected a float32 or float64 numpy array",
        ))
    }

    /// The state buffers one tensor needs under this configuration, in the kernels' order, as
    /// `(name, initial value)` pairs.
    #[getter]
    fn buffer_specs(&self) -> Vec<(&'static str, f64)> {
        self.f64.buffer_specs()
    }

    /// Threads a step runs on (1 by default; large steps are split into chunks).
    #[getter]
    fn get_threads(&self) -> usize {
        self.threads
    }

    #[setter]
    fn set_threads(&mut self, threads: usize) -> PyResult<()> {
        if threads == 0 {
            return Err(value_error("threads = 0: must be at least 1"));
        }
        let before = self.threads;
        self.threads = threads;
        self.apply_execution()
            .inspect_err(|_| self.threads = before)
    }

    /// What a step does with a NaN or infinite gradient: `"error"` (the default: raise, change
    /// nothing), `"skip"` (change nothing, count it) or `"propagate"` (no check, as PyTorch).
    #[getter]
    fn get_non_finite(&self) -> &'static str {
        match self.non_finite {
            NonFinitePolicy::Error => "error",
            NonFinitePolicy::Skip => "skip",
            NonFinitePolicy::Propagate => "propagate",
        }
    }

    #[setter]
    fn set_non_finite(&mut self, policy: &str) -> PyResult<()> {
        self.non_finite = match policy {
            "error" => NonFinitePolicy::Error,
            "skip" => NonFinitePolicy::Skip,
            "propagate" => NonFinitePolicy::Propagate,
            other => {
                return Err(value_error(format!(
                    "non_finite = {other:?}: must be \"error\", \"skip\" or \"propagate\""
                )))
            }
        };
        self.apply_execution()
    }

    /// Steps skipped by the `skip` policy.
    #[getter]
    fn skipped_steps(&self) -> u64 {
        match self.dtype {
            Some("float64") => self.f64.skipped_steps(),
            _ => self.f32.skipped_steps(),
        }
    }

    /// Updates every array of `params` in place from the matching array of `grads` (lists of
    /// C-contiguous float32 or float64 arrays, one element type throughout).
    fn step(
        &mut self,
        params: Vec<Bound<'_, PyAny>>,
        grads: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let stepped = match self.dtype {
            Some("float64") => step_as::<f64>(self.f64.as_mut(), &params, &grads)?,
            Some(_) => step_as::<f32>(self.f32.as_mut(), &params, &grads)?,
            None => {
                if step_as::<f32>(self.f32.as_mut(), &params, &grads)? {
                    self.dtype = Some("float32");
                    true
                } else if step_as::<f64>(self.f64.as_mut(), &params, &grads)? {
                    self.dtype = Some("float64");
                    true
                } else {
                    false
                }
            }
        };
        if !stepped {
            let expected = self.dtype.unwrap_or("float32 or float64");
            return Err(PyTypeError::new_err(format!(
                "params[0]: expected a {expected} numpy array"
            )));
        }
        Ok(())
    }

    /// The optimizer: `"rmsprop"`, `"adam"`, ...
    #[getter]
    fn kind(&self) -> &str {
        &self.kind
    }

    /// The configuration, as JSON (Rust field names, stable enum names).
    #[getter]
    fn config_json(&self) -> String {
        self.config.to_string()
    }

    /// Successful steps.
    #[getter]
    fn steps(&self) -> u64 {
        match self.dtype {
            Some("float64") => self.f64.steps(),
            _ => self.f32.steps(),
        }
    }

    /// The learning rate.
    #[getter]
    fn get_lr(&self) -> f64 {
        match self.dtype {
            Some("float64") => self.f64.learning_rate(),
            _ => self.f32.learning_rate(),
        }
    }

    /// Sets the learning rate (what a scheduler does).
    #[setter]
    fn set_lr(&mut self, lr: f64) -> PyResult<()> {
        self.f32.set_learning_rate(lr).map_err(value_error)?;
        self.f64.set_learning_rate(lr).map_err(value_error)?;
        if let Some(c) = self.config.as_object_mut() {
            c.insert("lr".into(), lr.into());
        }
        Ok(())
    }

    /// The state buffers of tensor `index` by name, as lists of floats.
    fn state(&self, index: usize) -> Vec<(String, Vec<f64>)> {
        match self.dtype {
            Some("float64") => self
                .f64
                .state_buffers(index)
                .into_iter()
                .map(|(n, b)| (n.to_string(), b.to_vec()))
                .collect(),
            _ => self
                .f32
                .state_buffers(index)
                .into_iter()
                .map(|(n, b)| (n.to_string(), b.iter().map(|x| x.to_f64()).collect()))
                .collect(),
        }
    }

    /// The whole state as plain Python data: `{"kind", "dtype", "config" (JSON text), "steps",
    /// "skipped_steps", "state": [{"step", "len", <buffer>: numpy array, ...} per tensor]}`; the
    /// arrays are copies.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        fn to_dict<'py, T: Float + numpy::Element>(
            py: Python<'py>,
            s: Snapshot<T>,
        ) -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            d.set_item("kind", &s.kind)?;
            d.set_item("dtype", T::DTYPE)?;
            d.set_item("config", s.config.to_string())?;
            d.set_item("steps", s.steps)?;
            d.set_item("skipped_steps", s.skipped_steps)?;
            let tensors = PyList::empty(py);
            for t in s.tensors {
                let entry = PyDict::new(py);
                entry.set_item("step", t.step)?;
                entry.set_item("len", t.len)?;
                for (name, values) in t.buffers {
                    entry.set_item(name, PyArray1::from_vec(py, values))?;
                }
                tensors.append(entry)?;
            }
            d.set_item("state", tensors)?;
            Ok(d)
        }
        match self.dtype {
            Some("float64") => to_dict(py, self.f64.snapshot()),
            _ => to_dict(py, self.f32.snapshot()),
        }
    }

    /// Replaces configuration and state with a `state_dict()` of an optimizer of the same kind;
    /// nothing changes when it is refused.
    fn load_state_dict(&mut self, state: &Bound<'_, PyDict>) -> PyResult<()> {
        fn item<'py>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Bound<'py, PyAny>> {
            d.get_item(key)?
                .ok_or_else(|| value_error(format!("state_dict: missing `{key}`")))
        }
        fn from_dict<T: Float + numpy::Element>(
            d: &Bound<'_, PyDict>,
            kind: String,
        ) -> PyResult<Snapshot<T>> {
            let config: String = item(d, "config")?.extract()?;
            let config: Value = serde_json::from_str(&config).map_err(value_error)?;
            let mut snapshot = Snapshot::node(
                &kind,
                config,
                item(d, "steps")?.extract()?,
                item(d, "skipped_steps")?.extract()?,
            );
            let tensors = item(d, "state")?;
            let tensors = tensors
                .downcast::<PyList>()
                .map_err(|_| PyTypeError::new_err("state_dict: `state` must be a list of dicts"))?;
            for (i, t) in tensors.iter().enumerate() {
                let t = t.downcast::<PyDict>().map_err(|_| {
                    PyTypeError::new_err(format!("state_dict: state[{i}] must be a dict"))
                })?;
                let mut buffers = Vec::new();
                let (mut step, mut len) = (0, 0);
                for (key, value) in t.iter() {
                    let key: String = key.extract()?;
                    if key == "step" {
                        step = value.extract()?;
                        continue;
                    }
                    if key == "len" {
                        len = value.extract()?;
                        continue;
                    }
                    let array = value.downcast::<PyArrayDyn<T>>().map_err(|_| {
                        PyTypeError::new_err(format!(
                            "state_dict: state[{i}][{key:?}] must be a {} numpy array",
                            T::DTYPE
                        ))
                    })?;
                    let values = array
                        .try_readonly()
                        .map_err(value_error)?
                        .as_slice()
                        .map_err(|_| {
                            PyTypeError::new_err(format!("state[{i}][{key:?}]: not C-contiguous"))
                        })?
                        .to_vec();
                    buffers.push((key, values));
                }
                snapshot.tensors.push(TensorSnapshot { step, len, buffers });
            }
            Ok(snapshot)
        }
        let kind: String = item(state, "kind")?.extract()?;
        let dtype: String = item(state, "dtype")?.extract()?;
        let result = match dtype.as_str() {
            "float32" => {
                let snapshot = from_dict::<f32>(state, kind)?;
                restore_all_or_nothing(self.f32.as_mut(), snapshot)
            }
            "float64" => {
                let snapshot = from_dict::<f64>(state, kind)?;
                restore_all_or_nothing(self.f64.as_mut(), snapshot)
            }
            other => {
                return Err(value_error(format!(
                    "state_dict: dtype `{other}`; expected float32 or float64"
                )))
            }
        };
        result.map_err(value_error)?;
        self.dtype = Some(if dtype == "float64" {
            "float64"
        } else {
            "float32"
        });
        self.config = match self.dtype {
            Some("float64") => self.f64.snapshot().config,
            _ => self.f32.snapshot().config,
        };
        Ok(())
    }

    /// Saves the configuration and state to `path` in the library's checkpoint format,
    /// atomically.
    fn save(&self, path: &str) -> PyResult<()> {
        let path = std::path::Path::new(path);
        match self.dtype {
            Some("float64") => checkpoint::save(path, self.f64.as_ref(), None),
            _ => checkpoint::save(path, self.f32.as_ref(), None),
        }
        .map_err(value_error)
    }

    /// Loads a checkpoint written by `save` (configuration and state); nothing changes when the
    /// file is refused.
    fn load(&mut self, path: &str) -> PyResult<()> {
        let path = std::path::Path::new(path);
        let bytes = std::fs::read(path).map_err(value_error)?;
        let dtype = checkpoint_dtype(&bytes).map_err(value_error)?;
        match dtype.as_str() {
            "float64" => checkpoint::from_bytes(self.f64.as_mut(), &bytes).map(|_| ()),
            _ => checkpoint::from_bytes(self.f32.as_mut(), &bytes).map(|_| ()),
        }
        .map_err(value_error)?;
        self.dtype = Some(if dtype == "float64" {
            "float64"
        } else {
            "float32"
        });
        // The file's configuration is now the optimizer's.
        self.config = match self.dtype {
            Some("float64") => self.f64.snapshot().config,
            _ => self.f32.snapshot().config,
        };
        Ok(())
    }
}

/// Restores `snapshot`, or puts the optimizer back as it was.
fn restore_all_or_nothing<T: Float>(
    opt: &mut dyn Checkpointable<T>,
    snapshot: Snapshot<T>,
) -> Result<(), checkpoint::CheckpointError> {
    let before = opt.snapshot();
    opt.restore(snapshot).inspect_err(|_| {
        opt.restore(before)
            .expect("an optimizer's own snapshot restores");
    })
}

/// The `dtype` a checkpoint's header records (read without loading anything).
fn checkpoint_dtype(bytes: &[u8]) -> Result<String, String> {
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or("not a checkpoint: shorter than its header length")?;
    let header = bytes
        .get(8..8usize.saturating_add(n))
        .ok_or("not a checkpoint: truncated header")?;
    let v: Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    Ok(v["__metadata__"]["dtype"]
        .as_str()
        .unwrap_or("float32")
        .to_string())
}

/// The presets of an optimizer kind, the default first.
#[pyfunction]
fn preset_names(kind: &str) -> PyResult<Vec<&'static str>> {
    presets(kind)
        .map(|t| t.into_iter().map(|(n, _)| n).collect())
        .ok_or_else(|| value_error(format!("unknown optimizer `{kind}`: choose one of {KINDS}")))
}

#[pymodule]
fn _rmsprop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Optimizer>()?;
    m.add_function(wrap_pyfunction!(preset_names, m)?)?;
    Ok(())
}
