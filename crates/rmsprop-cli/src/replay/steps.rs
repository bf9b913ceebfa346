//! Stepping through a vector: the recorded gradients through our optimizer, each step's
//! parameters and the final state compared with the recording.

use rmsprop::{Execution, Float, NonFinitePolicy, Optimizer};
use serde_json::{Map, Value};

use super::*;

impl Vector {
    /// Replays the vector (RMSProp vectors with `preset`, default: the one matching `framework`).
    ///
    /// # Errors
    /// As [`Vector::setup`], and [`ReplayError::Unsupported`] for a dtype other than
    /// `float32` / `float64`.
    pub fn replay(&self, preset: Option<Preset>) -> Result<Report, ReplayError> {
        let setup = self.setup(preset)?;
        match self.data.dtype.as_str() {
            "float32" => self.replay_as::<f32>(setup),
            "float64" => self.replay_as::<f64>(setup),
            other => {
                Err(self.unsupported("dtype", format!("`{other}`; expected float32 or float64")))
            }
        }
    }

    pub(super) fn replay_as<T: Float>(&self, setup: Setup) -> Result<Report, ReplayError> {
        let d = &self.data;
        let lr = setup.lr();
        let mut opt = setup
            .build::<T>()
            .map_err(|e| self.unsupported("normalized", e.to_string()))?;
        if let Some(generator) = &d.generator {
            return self.replay_generated(setup, opt, generator);
        }
        // Replay what the framework did: non-finite gradients propagate, as in PyTorch.
        opt.set_execution(Execution::sequential().with_non_finite(NonFinitePolicy::Propagate));
        let to_t = |row: &Vec<f64>| row.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let mut params = to_t(&d.initial_params);
        let mut trajectory = Vec::with_capacity(d.steps);
        let mut dev = Deviation::default();
        for (k, (grad, recorded)) in d.gradients.iter().zip(&d.trajectory).enumerate() {
            if let Some(lrs) = &d.lrs {
                opt.set_learning_rate(lrs[k])
                    .map_err(|e| self.unsupported(&format!("lrs[{k}]"), e.to_string()))?;
            }
            let grad = to_t(grad);
            opt.step_single(&mut params, &grad)
                .map_err(|e| self.unsupported(&format!("gradients[{k}]"), e.to_string()))?;
            // The recorded decimal, rounded to the vector's dtype first (for float32 files it is
            // the shortest f32 decimal: parsed as f64 it is not yet the framework's f32 value).
            for (i, (&ours, &theirs)) in params.iter().zip(recorded).enumerate() {
                dev.add(ours.to_f64(), T::from_f64(theirs).to_f64(), k, i);
            }
            trajectory.push(params.clone());
        }

        // optax's trace holds the negative of our (lr-inside) momentum buffer.
        let optax_rmsprop = matches!(&setup, Setup::RmsProp { .. }) && d.framework == "optax";
        let mut final_state = Map::new();
        final_state.insert("step".into(), Value::from(opt.steps()));
        let buffers = opt.state_buffers(0);
        for (name, values) in &buffers {
            let sign = if optax_rmsprop && *name == "momentum_buffer" {
                -1.0
            } else {
                1.0
            };
            final_state.insert((*name).into(), numbers(values, sign));
        }
        let state = compare_state::<T>(&d.final_state, &final_state);

        Ok(Report {
            name: self.name(),
            framework: d.framework.clone(),
            framework_version: d.version.clone(),
            config_name: d.config.clone(),
            objective: d.objective.clone(),
            dtype: d.dtype.clone(),
            steps: d.steps,
            params: d.initial_params.len(),
            setup: setup.describe(),
            centered: setup.centered(),
            lr,
            trajectory: dev,
            state,
            tolerance_lr: tolerance_lr(&d.dtype, setup.centered()),
            our_trajectory: trajectory.iter().map(|row| numbers(row, 1.0)).collect(),
            our_final_state: final_state,
            generated: false,
        })
    }

    /// Replays a generated (long) vector: gradients from its generator, the default kernels on
    /// two threads split into chunks of 4,096 (so the vectorized and threaded code runs), the
    /// parameters compared at the sampled coordinates after each sampled step, and the final
    /// state at the sampled coordinates.
    pub(super) fn replay_generated<T: Float>(
        &self,
        setup: Setup,
        mut opt: Box<dyn Optimizer<T>>,
        g: &Generator,
    ) -> Result<Report, ReplayError> {
        let d = &self.data;
        let n = d.shape[0];
        let threaded = Execution::threads(2)
            .map(|e| e.with_split(4096, 4096))
            .unwrap_or_else(|_| Execution::sequential());
        opt.set_execution(threaded.with_non_finite(NonFinitePolicy::Propagate));
        let mut params: Vec<T> = (0..n).map(|i| T::from_f64(g.initial(i))).collect();
        let mut grad = vec![T::ZERO; n];
        let mut dev = Deviation::default();
        let mut trajectory = Vec::with_capacity(d.sample_steps.len());
        let mut next = 0;
        for k in 0..d.steps {
            for (i, x) in grad.iter_mut().enumerate() {
                *x = T::from_f64(g.gradient(k, i, n));
            }
            opt.step_single(&mut params, &grad)
                .map_err(|e| self.unsupported(&format!("step {}", k + 1), e.to_string()))?;
            if d.sample_steps.get(next) == Some(&(k + 1)) {
                let ours: Vec<T> = d.sample.iter().map(|&i| params[i]).collect();
                for (j, (&o, &t)) in ours.iter().zip(&d.trajectory_sample[next]).enumerate() {
                    dev.add(o.to_f64(), T::from_f64(t).to_f64(), k, d.sample[j]);
                }
                trajectory.push(numbers(&ours, 1.0));
                next += 1;
            }
        }
        let optax_rmsprop = matches!(&setup, Setup::RmsProp { .. }) && d.framework == "optax";
        let mut final_state = Map::new();
        final_state.insert("step".into(), Value::from(opt.steps()));
        for (name, values) in opt.state_buffers(0) {
            let sign = if optax_rmsprop && name == "momentum_buffer" {
                -1.0
            } else {
                1.0
            };
            let sampled: Vec<T> = d.sample.iter().map(|&i| values[i]).collect();
            final_state.insert(name.into(), numbers(&sampled, sign));
        }
        let state = compare_state::<T>(&d.final_state_sample, &final_state);
        Ok(Report {
            name: self.name(),
            framework: d.framework.clone(),
            framework_version: d.version.clone(),
            config_name: d.config.clone(),
            objective: d.objective.clone(),
            dtype: d.dtype.clone(),
            steps: d.steps,
            params: n,
            setup: setup.describe(),
            centered: setup.centered(),
            lr: setup.lr(),
            trajectory: dev,
            state,
            tolerance_lr: tolerance_lr(&d.dtype, setup.centered()),
            our_trajectory: trajectory,
            our_final_state: final_state,
            generated: true,
        })
    }
}

/// Each recorded final-state buffer against ours (both in the framework's convention), with
/// the recorded decimals rounded to `T` first.
pub(super) fn compare_state<T: Float>(
    recorded: &Map<String, Value>,
    ours: &Map<String, Value>,
) -> Vec<StateDeviation> {
    let mut state = Vec::new();
    for (name, theirs) in recorded {
        let Some(theirs) = theirs.as_array() else {
            continue; // `step` and other scalars
        };
        let theirs: Vec<f64> = theirs.iter().filter_map(Value::as_f64).collect();
        let mut sd = Deviation::default();
        let kept = match ours.get(name).and_then(Value::as_array) {
            Some(ours) if ours.len() == theirs.len() => {
                for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
                    let t = T::from_f64(*t).to_f64();
                    sd.add(o.as_f64().unwrap_or(f64::NAN), t, 0, i);
                }
                true
            }
            _ => false,
        };
        state.push(StateDeviation {
            name: name.clone(),
            kept,
            deviation: sd,
        });
    }
    state
}

/// JSON numbers for values of `T`, printed with the shortest decimal of `T` (`null` if not finite).
pub(super) fn numbers<T: Float>(xs: &[T], sign: f64) -> Value {
    Value::Array(
        xs.iter()
            .map(|&x| {
                let x = if sign < 0.0 { -x } else { x };
                // The shortest decimal that round-trips to T, read back as the f64 that prints the same.
                let shortest: f64 = x.to_string().parse().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(shortest).map_or(Value::Null, Value::Number)
            })
            .collect(),
    )
}
