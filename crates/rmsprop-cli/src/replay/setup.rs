//! The optimizer a vector asks for: its algorithm, hyperparameters and operation order.

use rmsprop::{
    Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, EpsPlacement, FamilyOrder,
    Float, HyperparameterPrecision, Lion, LionConfig, MomentumStyle, Optimizer, RmsProp,
    RmsPropConfig, Sgd, SgdConfig, WeightDecayStyle,
};
use serde_json::Value;

use super::*;

/// The optimizer a vector is replayed with.
#[derive(Clone, Debug, PartialEq)]
pub enum Setup {
    /// RMSProp with a framework preset and the vector's hyperparameters.
    RmsProp {
        /// The preset.
        preset: Preset,
        /// The configuration.
        config: RmsPropConfig,
    },
    /// SGD.
    Sgd(SgdConfig),
    /// Adagrad.
    Adagrad(AdagradConfig),
    /// Adam / AdamW.
    Adam(AdamConfig),
    /// Adadelta.
    Adadelta(AdadeltaConfig),
    /// Lion.
    Lion(LionConfig),
}

impl Setup {
    /// A new optimizer for element type `T`.
    pub fn build<T: Float>(&self) -> rmsprop::Result<Box<dyn Optimizer<T>>> {
        Ok(match self {
            Setup::RmsProp { config, .. } => Box::new(RmsProp::new(config.clone())?),
            Setup::Sgd(c) => Box::new(Sgd::new(c.clone())?),
            Setup::Adagrad(c) => Box::new(Adagrad::new(c.clone())?),
            Setup::Adam(c) => Box::new(Adam::new(c.clone())?),
            Setup::Adadelta(c) => Box::new(Adadelta::new(c.clone())?),
            Setup::Lion(c) => Box::new(Lion::new(c.clone())?),
        })
    }

    /// The initial learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Setup::RmsProp { config, .. } => config.lr,
            Setup::Sgd(c) => c.lr,
            Setup::Adagrad(c) => c.lr,
            Setup::Adam(c) => c.lr,
            Setup::Adadelta(c) => c.lr,
            Setup::Lion(c) => c.lr,
        }
    }

    /// Whether this is centered RMSProp (which gets the looser float32 tolerance).
    pub fn centered(&self) -> bool {
        matches!(self, Setup::RmsProp { config, .. } if config.centered)
    }

    /// A short description: the RMSProp preset, or the family member and its operation order.
    pub fn describe(&self) -> String {
        match self {
            Setup::RmsProp { preset, .. } => format!("rmsprop, preset {preset}"),
            Setup::Sgd(_) => "sgd".into(),
            Setup::Adagrad(c) => format!("adagrad, {} order", c.order),
            Setup::Adam(c) => format!("adam, {} order", c.order),
            Setup::Adadelta(c) => format!("adadelta, {} order", c.order),
            Setup::Lion(_) => "lion, optax order".into(),
        }
    }
}

impl Vector {
    pub(super) fn unsupported(&self, field: &str, message: String) -> ReplayError {
        ReplayError::Unsupported {
            path: self.path.clone(),
            field: field.into(),
            message,
        }
    }

    pub(super) fn normalized_algorithm(&self) -> Result<String, ReplayError> {
        match self.data.normalized.get("algorithm") {
            None | Some(Value::Null) => Ok("rmsprop".into()),
            Some(Value::String(a)) => match a.as_str() {
                "rmsprop" | "sgd" | "adagrad" | "adam" | "adamw" | "adadelta" | "lion" => {
                    Ok(a.clone())
                }
                other => Err(self.unsupported(
                    "normalized.algorithm",
                    format!(
                        "`{other}`; expected rmsprop, sgd, adagrad, adam, adamw, adadelta or lion"
                    ),
                )),
            },
            Some(other) => Err(ReplayError::Malformed {
                path: self.path.clone(),
                field: "normalized.algorithm".into(),
                message: format!("expected a string, found {other}"),
            }),
        }
    }

    pub(super) fn normalized_as<N: serde::de::DeserializeOwned>(&self) -> Result<N, ReplayError> {
        serde_path_to_error::deserialize(self.data.normalized.clone()).map_err(|e| {
            let inner = e.path().to_string();
            ReplayError::Malformed {
                path: self.path.clone(),
                field: if inner == "." {
                    "normalized".into()
                } else {
                    format!("normalized.{inner}")
                },
                message: e.into_inner().to_string(),
            }
        })
    }

    pub(super) fn family_order(&self) -> Result<FamilyOrder, ReplayError> {
        match self.data.framework.as_str() {
            "torch" | "pytorch" => Ok(FamilyOrder::Torch),
            "optax" => Ok(FamilyOrder::Optax),
            other => Err(self.unsupported(
                "framework",
                format!("`{other}` for this algorithm; expected torch or optax"),
            )),
        }
    }

    /// The optimizer that reproduces this vector. For RMSProp, the preset (from `framework`,
    /// unless `preset` overrides it) with every `normalized` hyperparameter applied; for the
    /// family, the algorithm in the framework's operation order.
    ///
    /// # Errors
    /// [`ReplayError::Unsupported`] for an unknown framework or algorithm, an unknown style
    /// name, hyperparameters the library rejects, or `preset` on a non-RMSProp vector.
    pub fn setup(&self, preset: Option<Preset>) -> Result<Setup, ReplayError> {
        let algorithm = self.normalized_algorithm()?;
        if algorithm != "rmsprop" && preset.is_some() {
            return Err(self.unsupported(
                "normalized.algorithm",
                format!("--preset applies to RMSProp vectors; this one is {algorithm}"),
            ));
        }
        let setup = match algorithm.as_str() {
            "rmsprop" => {
                let (preset, config) = self.rmsprop_config(preset)?;
                Setup::RmsProp { preset, config }
            }
            "sgd" => {
                let n: SgdNormalized = self.normalized_as()?;
                Setup::Sgd(SgdConfig {
                    lr: n.lr,
                    momentum: n.momentum,
                    dampening: n.dampening,
                    nesterov: n.nesterov,
                    weight_decay: n.weight_decay,
                    maximize: n.maximize,
                })
            }
            "adagrad" => {
                let n: AdagradNormalized = self.normalized_as()?;
                Setup::Adagrad(AdagradConfig {
                    lr: n.lr,
                    lr_decay: n.lr_decay,
                    weight_decay: n.weight_decay,
                    initial_accumulator_value: n.initial_accumulator_value,
                    eps: n.eps,
                    maximize: n.maximize,
                    order: self.family_order()?,
                })
            }
            "adadelta" => {
                let n: AdadeltaNormalized = self.normalized_as()?;
                Setup::Adadelta(AdadeltaConfig {
                    lr: n.lr,
                    rho: n.rho,
                    eps: n.eps,
                    weight_decay: n.weight_decay,
                    maximize: n.maximize,
                    order: self.family_order()?,
                })
            }
            "lion" => {
                let n: LionNormalized = self.normalized_as()?;
                if self.data.framework != "optax" {
                    return Err(self.unsupported(
                        "framework",
                        format!("`{}` for lion; expected optax", self.data.framework),
                    ));
                }
                Setup::Lion(LionConfig {
                    lr: n.lr,
                    beta1: n.beta1,
                    beta2: n.beta2,
                    weight_decay: n.weight_decay,
                })
            }
            _ => {
                let n: AdamNormalized = self.normalized_as()?;
                let style = self.weight_decay_style(&n.weight_decay_style)?;
                Setup::Adam(AdamConfig {
                    lr: n.lr,
                    beta1: n.beta1,
                    beta2: n.beta2,
                    eps: n.eps,
                    eps_root: n.eps_root,
                    weight_decay: n.weight_decay,
                    weight_decay_style: style,
                    amsgrad: n.amsgrad,
                    maximize: n.maximize,
                    order: self.family_order()?,
                })
            }
        };
        setup
            .build::<f64>()
            .map_err(|e| self.unsupported("normalized", e.to_string()))?;
        Ok(setup)
    }

    pub(super) fn weight_decay_style(&self, style: &str) -> Result<WeightDecayStyle, ReplayError> {
        match style {
            "coupled" => Ok(WeightDecayStyle::Coupled),
            "decoupled" => Ok(WeightDecayStyle::Decoupled),
            other => Err(self.unsupported(
                "normalized.weight_decay_style",
                format!("`{other}`; expected coupled or decoupled"),
            )),
        }
    }

    pub(super) fn rmsprop_config(
        &self,
        preset: Option<Preset>,
    ) -> Result<(Preset, RmsPropConfig), ReplayError> {
        let preset = match preset.or_else(|| Preset::for_framework(&self.data.framework)) {
            Some(p) => p,
            None => {
                return Err(self.unsupported(
                    "framework",
                    format!(
                        "no preset for framework `{}`: pass --preset (pytorch, keras, tf1, optax, timm-tf, graves, lesson)",
                        self.data.framework
                    ),
                ))
            }
        };
        let n: Normalized = self.normalized_as()?;
        let mut c = preset.config();
        c.lr = n.lr;
        c.rho = n.decay;
        c.eps = n.eps;
        c.eps_placement = if n.eps_in_sqrt {
            EpsPlacement::Inside
        } else {
            EpsPlacement::Outside
        };
        c.centered = n.centered;
        c.momentum = n.momentum;
        c.nesterov = n.nesterov;
        c.weight_decay = n.weight_decay;
        c.maximize = n.maximize;
        c.initial_square_avg = n.initial_scale;
        c.bias_correction = n.bias_correction;
        c.momentum_style = match n.momentum_style.as_str() {
            "torch" => MomentumStyle::LrOutside,
            "keras" | "optax" => MomentumStyle::LrInside,
            other => {
                return Err(self.unsupported(
                    "normalized.momentum_style",
                    format!("`{other}`; expected torch, keras or optax"),
                ))
            }
        };
        if let Some(style) = &n.weight_decay_style {
            c.weight_decay_style = self.weight_decay_style(style)?;
        }
        if let Some(p) = &n.hyperparameter_precision {
            c.hyperparameter_precision = match p.as_str() {
                "native" => HyperparameterPrecision::Native,
                "float32_lr" => HyperparameterPrecision::Float32Lr,
                "float32" => HyperparameterPrecision::Float32,
                other => {
                    return Err(self.unsupported(
                        "normalized.hyperparameter_precision",
                        format!("`{other}`; expected native, float32_lr or float32"),
                    ))
                }
            };
        }
        if n.lr_as_used_in_float64.is_some()
            && c.hyperparameter_precision == HyperparameterPrecision::Native
        {
            c.hyperparameter_precision = HyperparameterPrecision::Float32Lr;
        }
        c.validate()
            .map_err(|e| self.unsupported("normalized", e.to_string()))?;
        Ok((preset, c))
    }
}
