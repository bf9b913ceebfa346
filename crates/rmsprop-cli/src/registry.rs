//! The optimizer registry: every optimizer that `run`, `compare`, `sweep`, experiment files and
//! `serve` know, the options each takes, their defaults and their allowed ranges.
//!
//! One table decides which [`OptimizerSpec`] fields apply to which optimizer
//! ([`crate::run::build_optimizer`] refuses the others by name), and the same table is what
//! `rmsprop optimizers --json` prints and the playground's `GET /api/optimizers` serves. Defaults
//! are read off a freshly built optimizer, so they cannot drift from the library's.

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::Value;

use crate::run::{build_optimizer, OptimizerSpec};

/// The optimizers, by name, in the order tables list them.
pub const NAMES: &[&str] = &[
    "rmsprop", "sgd", "momentum", "nesterov", "adagrad", "adam", "adamw", "adadelta", "lion",
];

/// The values an option accepts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    /// A finite number from `min` (allowed when `min_inclusive`) to `max` (allowed when
    /// `max_inclusive`; no `max`: unbounded).
    Number {
        /// The lower end.
        min: f64,
        /// Whether `min` itself is allowed.
        min_inclusive: bool,
        /// Largest allowed value (excluded unless `max_inclusive`), if any.
        max: Option<f64>,
        /// Whether `max` itself is allowed.
        max_inclusive: bool,
    },
    /// true or false.
    Bool,
    /// One of a list of names.
    Choice {
        /// The names.
        choices: &'static [&'static str],
    },
}

impl Kind {
    const NON_NEGATIVE: Kind = Kind::Number {
        min: 0.0,
        min_inclusive: true,
        max: None,
        max_inclusive: false,
    };
    const UNIT: Kind = Kind::Number {
        min: 0.0,
        min_inclusive: true,
        max: Some(1.0),
        max_inclusive: false,
    };
    const OPEN_UNIT: Kind = Kind::Number {
        min: 0.0,
        min_inclusive: false,
        max: Some(1.0),
        max_inclusive: false,
    };

    /// The range in words, as error messages say it.
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::registry::option;
    /// assert_eq!(option("rho").unwrap().kind.describe(), "a finite number in [0, 1)");
    /// ```
    pub fn describe(&self) -> String {
        match self {
            Kind::Number {
                min,
                min_inclusive,
                max,
                max_inclusive,
            } => match max {
                None if *min_inclusive => format!("a finite number >= {min}"),
                None => format!("a finite number > {min}"),
                Some(max) => {
                    let open = if *min_inclusive { '[' } else { '(' };
                    let close = if *max_inclusive { ']' } else { ')' };
                    format!("a finite number in {open}{min}, {max}{close}")
                }
            },
            Kind::Bool => "true or false".to_string(),
            Kind::Choice { choices } => format!("one of {}", choices.join(", ")),
        }
    }

    /// Whether `value` is allowed.
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::registry::option;
    /// use serde_json::json;
    /// let rho = option("rho").unwrap().kind;
    /// assert!(rho.accepts(&json!(0.9)) && !rho.accepts(&json!(1.0)) && !rho.accepts(&json!("x")));
    /// ```
    pub fn accepts(&self, value: &Value) -> bool {
        match (self, value) {
            (
                Kind::Number {
                    min,
                    min_inclusive,
                    max,
                    max_inclusive,
                },
                Value::Number(n),
            ) => {
                let v = n.as_f64().unwrap_or(f64::NAN);
                v.is_finite()
                    && (if *min_inclusive { v >= *min } else { v > *min })
                    && max.map_or(true, |m| if *max_inclusive { v <= m } else { v < m })
            }
            (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Choice { choices }, Value::String(s)) => choices.contains(&s.as_str()),
            _ => false,
        }
    }
}

/// One option of [`OptimizerSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OptionDef {
    /// The field's name in experiment files, the JSON API and [`OptimizerSpec`].
    pub name: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// The values it accepts.
    #[serde(flatten)]
    pub kind: Kind,
}

const PRESETS: &[&str] = &[
    "pytorch", "keras", "tf1", "optax", "timm-tf", "graves", "lesson",
];

/// Every option an optimizer may take (besides `name`, `label` and `batch`).
pub const OPTIONS: &[OptionDef] = &[
    OptionDef {
        name: "lr",
        doc: "Learning rate.",
        kind: Kind::NON_NEGATIVE,
    },
    OptionDef {
        name: "preset",
        doc: "RMSProp formulation: whose defaults and operation order (eps placement, initial square average, momentum form).",
        kind: Kind::Choice { choices: PRESETS },
    },
    OptionDef {
        name: "rho",
        doc: "Decay of the square average (PyTorch's alpha, TF1's and optax's decay, the lesson's gamma).",
        kind: Kind::UNIT,
    },
    OptionDef {
        name: "eps",
        doc: "Epsilon added to the root (outside) or under it (inside).",
        kind: Kind::NON_NEGATIVE,
    },
    OptionDef {
        name: "eps_placement",
        doc: "Where eps goes: outside the root (PyTorch) or inside it (Keras, TF1, optax).",
        kind: Kind::Choice {
            choices: &["outside", "inside"],
        },
    },
    OptionDef {
        name: "momentum",
        doc: "Momentum coefficient.",
        kind: Kind::UNIT,
    },
    OptionDef {
        name: "centered",
        doc: "Divide by the root of the variance estimate v - m^2 instead of v.",
        kind: Kind::Bool,
    },
    OptionDef {
        name: "bias_correction",
        doc: "Divide the square average by 1 - rho^t (optax's option).",
        kind: Kind::Bool,
    },
    OptionDef {
        name: "initial_square_avg",
        doc: "The square average before the first step (PyTorch 0, TF1 1).",
        kind: Kind::NON_NEGATIVE,
    },
    OptionDef {
        name: "beta1",
        doc: "First-moment decay.",
        kind: Kind::UNIT,
    },
    OptionDef {
        name: "beta2",
        doc: "Second-moment decay.",
        kind: Kind::UNIT,
    },
    OptionDef {
        name: "amsgrad",
        doc: "Divide by the running maximum of the second moment (AMSGrad).",
        kind: Kind::Bool,
    },
    OptionDef {
        name: "weight_decay",
        doc: "Weight decay (coupled; decoupled for adamw and lion).",
        kind: Kind::NON_NEGATIVE,
    },
    OptionDef {
        name: "clip_norm",
        doc: "Clip the gradient's global L2 norm to this before every step (torch.nn.utils.clip_grad_norm_).",
        kind: Kind::Number {
            min: 0.0,
            min_inclusive: false,
            max: None,
            max_inclusive: false,
        },
    },
    OptionDef {
        name: "lr_decay",
        doc: "Learning-rate decay per step, gamma: the rate at step t is lr × gamma^t (PyTorch's ExponentialLR).",
        kind: Kind::Number {
            min: 0.0,
            min_inclusive: false,
            max: Some(1.0),
            max_inclusive: true,
        },
    },
];

/// The option named `name`, if any.
pub fn option(name: &str) -> Option<&'static OptionDef> {
    OPTIONS.iter().find(|o| o.name == name)
}

/// Option `option` as optimizer `optimizer` takes it: its range where that optimizer narrows
/// it (Nesterov momentum must be > 0), else [`option`]'s.
///
/// # Examples
/// ```
/// use rmsprop_cli::registry::def_for;
/// assert_eq!(def_for("nesterov", "momentum").unwrap().kind.describe(), "a finite number in (0, 1)");
/// assert_eq!(def_for("momentum", "momentum").unwrap().kind.describe(), "a finite number in [0, 1)");
/// ```
pub fn def_for(optimizer: &str, option: &str) -> Option<OptionDef> {
    let mut def = *self::option(option)?;
    if (optimizer, option) == ("nesterov", "momentum") {
        def.kind = Kind::OPEN_UNIT;
    }
    Some(def)
}

/// The options optimizer `name` takes, `lr` first (`None`: no such optimizer).
///
/// # Examples
/// ```
/// assert_eq!(
///     rmsprop_cli::registry::options_of("lion"),
///     Some(&["lr", "beta1", "beta2", "weight_decay", "lr_decay", "clip_norm"][..])
/// );
/// assert_eq!(rmsprop_cli::registry::options_of("adamax"), None);
/// ```
pub fn options_of(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "rmsprop" => &[
            "lr",
            "preset",
            "rho",
            "eps",
            "eps_placement",
            "momentum",
            "centered",
            "bias_correction",
            "initial_square_avg",
            "weight_decay",
            "lr_decay",
            "clip_norm",
        ],
        "sgd" | "momentum" | "nesterov" => {
            &["lr", "momentum", "weight_decay", "lr_decay", "clip_norm"]
        }
        "adagrad" => &["lr", "eps", "weight_decay", "lr_decay", "clip_norm"],
        "adam" | "adamw" => &[
            "lr",
            "beta1",
            "beta2",
            "eps",
            "amsgrad",
            "weight_decay",
            "lr_decay",
            "clip_norm",
        ],
        "adadelta" => &["lr", "rho", "eps", "weight_decay", "lr_decay", "clip_norm"],
        "lion" => &[
            "lr",
            "beta1",
            "beta2",
            "weight_decay",
            "lr_decay",
            "clip_norm",
        ],
        _ => return None,
    })
}

fn summary(name: &str) -> &'static str {
    match name {
        "rmsprop" => "RMSProp: divides each coordinate's step by the root of a decaying average of its squared gradients.",
        "sgd" => "Plain (stochastic) gradient descent.",
        "momentum" => "Gradient descent with heavy-ball momentum (0.9 unless set).",
        "nesterov" => "Gradient descent with Nesterov momentum (0.9 unless set).",
        "adagrad" => "Adagrad: divides by the root of the sum of all squared gradients so far.",
        "adam" => "Adam: momentum on the gradient and RMSProp's square average, both bias-corrected.",
        "adamw" => "Adam with decoupled weight decay.",
        "adadelta" => "Adadelta: RMSProp's square average with a unit-correcting numerator.",
        _ => "Lion: the sign of an interpolated momentum.",
    }
}

/// One optimizer: its options with their defaults.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptimizerInfo {
    /// Its name (`name` in experiment files).
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Its options, `lr` first.
    pub options: Vec<OptionInfo>,
}

/// One option of one optimizer, with that optimizer's default.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OptionInfo {
    /// The option.
    #[serde(flatten)]
    pub def: OptionDef,
    /// Its default for this optimizer.
    pub default: Value,
}

/// The registry: every optimizer with its options and their defaults.
///
/// # Examples
/// ```
/// let all = rmsprop_cli::registry::optimizers();
/// let rmsprop = &all[0];
/// assert_eq!(rmsprop.name, "rmsprop");
/// let rho = rmsprop.options.iter().find(|o| o.def.name == "rho").unwrap();
/// assert_eq!(rho.default, serde_json::json!(0.99));
/// ```
pub fn optimizers() -> Vec<OptimizerInfo> {
    NAMES
        .iter()
        .map(|&name| {
            let built = build_optimizer(&OptimizerSpec::named(name)).expect("every default builds");
            let config = built.snapshot().config;
            let options = options_of(name)
                .expect("every name has options")
                .iter()
                .map(|&o| {
                    let def = def_for(name, o).expect("every listed option is defined");
                    let default = match o {
                        "lr" => Value::from(built.learning_rate()),
                        "preset" => Value::from("pytorch"),
                        "lr_decay" => Value::from(1.0),
                        "clip_norm" => Value::Null,
                        _ => config.get(o).cloned().unwrap_or(Value::Null),
                    };
                    OptionInfo { def, default }
                })
                .collect();
            OptimizerInfo {
                name,
                summary: summary(name),
                options,
            }
        })
        .collect()
}

/// The registry as a text table: one line per option of every optimizer (what `rmsprop
/// optimizers` prints).
///
/// # Examples
/// ```
/// let t = rmsprop_cli::registry::table();
/// let rho: Vec<&str> = t.lines().find(|l| l.contains(" rho ")).unwrap().split_whitespace().collect();
/// assert_eq!(rho[..3], ["rmsprop", "rho", "0.99"]);
/// ```
pub fn table() -> String {
    let mut out = String::new();
    for info in optimizers() {
        out += &format!("{}: {}\n", info.name, info.summary);
        for o in &info.options {
            out += &format!(
                "  {:<8} {:<19} {:<10} {}\n",
                info.name,
                o.def.name,
                o.default.to_string().trim_matches('"'),
                o.def.kind.describe()
            );
        }
    }
    out
}

/// Checks that every option `spec` sets applies to its optimizer.
///
/// # Errors
/// An unknown optimizer, or an option it does not take (named, with the ones it does).
///
/// # Examples
/// ```
/// use rmsprop_cli::run::OptimizerSpec;
/// let spec = OptimizerSpec { beta1: Some(0.9), ..OptimizerSpec::named("rmsprop") };
/// let err = rmsprop_cli::registry::check_applies(&spec).unwrap_err().to_string();
/// assert!(err.starts_with("`beta1` does not apply to rmsprop (it takes lr, preset, rho"));
/// ```
pub fn check_applies(spec: &OptimizerSpec) -> Result<()> {
    let name = spec.name.as_str();
    let Some(allowed) = options_of(name) else {
        bail!(
            "unknown optimizer `{name}`: choose one of {}",
            NAMES.join(", ")
        );
    };
    let given = [
        ("preset", spec.preset.is_some()),
        ("rho", spec.rho.is_some()),
        ("eps", spec.eps.is_some()),
        ("eps_placement", spec.eps_placement.is_some()),
        ("momentum", spec.momentum.is_some()),
        ("centered", spec.centered.is_some()),
        ("bias_correction", spec.bias_correction.is_some()),
        ("initial_square_avg", spec.initial_square_avg.is_some()),
        ("beta1", spec.beta1.is_some()),
        ("beta2", spec.beta2.is_some()),
        ("amsgrad", spec.amsgrad.is_some()),
        ("weight_decay", spec.weight_decay.is_some()),
        ("lr_decay", spec.lr_decay.is_some()),
        ("clip_norm", spec.clip_norm.is_some()),
    ];
    for (field, set) in given {
        if set && !allowed.contains(&field) {
            bail!(
                "`{field}` does not apply to {name} (it takes {})",
                allowed.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Sets option `name` of a spec from JSON, as an experiment file would.
    fn with(name: &str, option: &str, value: Value) -> Result<OptimizerSpec> {
        let mut v = json!({ "name": name });
        v[option] = value;
        Ok(serde_json::from_value(v)?)
    }

    #[test]
    fn every_listed_option_is_a_spec_field_that_builds_with_its_default() {
        for info in optimizers() {
            for o in &info.options {
                // lr has no field of its own to set; null means "unset" (no clipping).
                if o.def.name == "lr" || o.default.is_null() {
                    continue;
                }
                let spec = with(info.name, o.def.name, o.default.clone())
                    .unwrap_or_else(|e| panic!("{}.{}: {e}", info.name, o.def.name));
                build_optimizer(&spec).unwrap_or_else(|e| {
                    panic!("{}.{} = {}: {e}", info.name, o.def.name, o.default)
                });
                assert!(
                    o.def.kind.accepts(&o.default),
                    "{}.{}",
                    info.name,
                    o.def.name
                );
            }
        }
    }

    /// The ranges agree with the library's own validation: the ends it states are where the
    /// library starts refusing.
    #[test]
    fn number_ranges_are_where_the_library_refuses() {
        for info in optimizers() {
            for o in &info.options {
                let Kind::Number {
                    min,
                    min_inclusive,
                    max,
                    max_inclusive,
                } = o.def.kind
                else {
                    continue;
                };
                let builds = |v: f64| {
                    with(info.name, o.def.name, json!(v))
                        .and_then(|s| build_optimizer(&s).map(|_| ()))
                };
                let at = format!("{}.{}", info.name, o.def.name);
                assert_eq!(builds(min).is_ok(), min_inclusive, "{at} at its min");
                assert!(builds(min + 1e-9).is_ok(), "{at} above its min");
                assert!(builds(min - 1e-9).is_err(), "{at} below its min");
                match max {
                    Some(m) => {
                        assert_eq!(builds(m).is_ok(), max_inclusive, "{at} at its max");
                        assert!(builds(m - 1e-9).is_ok(), "{at} below its max");
                        assert!(builds(m + 1e-9).is_err(), "{at} above its max");
                    }
                    None => assert!(builds(1e6).is_ok(), "{at} large"),
                }
            }
        }
    }

    /// Options not listed for an optimizer are refused by the builder, naming the option.
    #[test]
    fn unlisted_options_are_refused_by_name() {
        let sample = |kind: &Kind| match kind {
            Kind::Number { .. } => json!(0.5),
            Kind::Bool => json!(true),
            Kind::Choice { choices } => json!(choices[0]),
        };
        for &name in NAMES {
            let listed = options_of(name).unwrap();
            for o in OPTIONS.iter().filter(|o| !listed.contains(&o.name)) {
                let spec = with(name, o.name, sample(&o.kind)).unwrap();
                let err = build_optimizer(&spec).err().expect("refused").to_string();
                assert!(
                    err.contains(&format!("`{}` does not apply to {name}", o.name)),
                    "{err}"
                );
            }
        }
    }

    /// Defaults against the frameworks' documentation (torch.optim), not against our code.
    #[test]
    fn defaults_are_pytorchs() {
        let all = optimizers();
        let default = |opt: &str, o: &str| {
            all.iter()
                .find(|i| i.name == opt)
                .unwrap()
                .options
                .iter()
                .find(|i| i.def.name == o)
                .unwrap()
                .default
                .clone()
        };
        assert_eq!(default("rmsprop", "lr"), json!(0.01));
        assert_eq!(default("rmsprop", "rho"), json!(0.99));
        assert_eq!(default("rmsprop", "eps"), json!(1e-8));
        assert_eq!(default("rmsprop", "eps_placement"), json!("outside"));
        assert_eq!(default("rmsprop", "centered"), json!(false));
        assert_eq!(default("adam", "lr"), json!(0.001));
        assert_eq!(default("adam", "beta2"), json!(0.999));
        assert_eq!(default("adamw", "weight_decay"), json!(0.01));
        assert_eq!(default("adagrad", "eps"), json!(1e-10));
        assert_eq!(default("adadelta", "rho"), json!(0.9));
        assert_eq!(default("adadelta", "lr"), json!(1.0));
    }

    #[test]
    fn choices_are_the_names_serde_reads() {
        for o in OPTIONS {
            if let Kind::Choice { choices } = o.kind {
                for c in choices {
                    let name = if o.name == "preset" || o.name == "eps_placement" {
                        "rmsprop"
                    } else {
                        unreachable!()
                    };
                    with(name, o.name, json!(c)).unwrap_or_else(|e| panic!("{}={c}: {e}", o.name));
                }
                assert!(with("rmsprop", o.name, json!("nonsense")).is_err());
            }
        }
    }
}
