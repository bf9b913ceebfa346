//! Reading a vector file: JSON, gzip-compressed JSON, or a generator to expand.

use std::path::Path;

use serde_json::Value;

use super::*;

impl Vector {
    /// The checks a generated vector's fields must pass: `(field, problem)` on the first that fails.
    pub(super) fn check_generated(d: &VectorData, g: &Generator) -> Result<(), (String, String)> {
        let fail = |f: &str, m: String| Err((f.to_string(), m));
        if g.kind != "splitmix64" {
            return fail(
                "generator.kind",
                format!("`{}`; expected splitmix64", g.kind),
            );
        }
        if g.scales.is_empty() || g.scales.iter().any(|s| !s.is_finite()) {
            return fail(
                "generator.scales",
                "expected at least one finite number".into(),
            );
        }
        let n = match d.shape.as_slice() {
            [n] if (1..=MAX_GENERATED.0).contains(n) => *n,
            _ => {
                return fail(
                    "shape",
                    format!("expected [n] with 1 <= n <= {}", MAX_GENERATED.0),
                )
            }
        };
        if d.steps == 0 || n.saturating_mul(d.steps) > MAX_GENERATED.1 {
            return fail(
                "steps",
                format!("expected 1 to {} steps of {n}", MAX_GENERATED.1 / n),
            );
        }
        for (field, stored) in [
            ("initial_params", d.initial_params.len()),
            ("gradients", d.gradients.len()),
            ("trajectory", d.trajectory.len()),
        ] {
            if stored != 0 {
                return fail(field, "a generated vector stores no values here".into());
            }
        }
        if d.lrs.is_some() {
            return fail("lrs", "not supported with a generator".into());
        }
        if d.sample.is_empty()
            || d.sample.windows(2).any(|w| w[0] >= w[1])
            || d.sample.last().is_some_and(|&i| i >= n)
        {
            return fail(
                "sample",
                format!("expected increasing coordinates below {n}"),
            );
        }
        if d.sample_steps.is_empty()
            || d.sample_steps.windows(2).any(|w| w[0] >= w[1])
            || d.sample_steps[0] == 0
            || d.sample_steps.last().is_some_and(|&s| s > d.steps)
        {
            return fail(
                "sample_steps",
                format!("expected increasing steps from 1 to {}", d.steps),
            );
        }
        if d.trajectory_sample.len() != d.sample_steps.len() {
            return fail(
                "trajectory_sample",
                format!(
                    "{} rows but {} sample_steps",
                    d.trajectory_sample.len(),
                    d.sample_steps.len()
                ),
            );
        }
        if let Some((k, row)) = d
            .trajectory_sample
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != d.sample.len())
        {
            return fail(
                &format!("trajectory_sample[{k}]"),
                format!(
                    "{} values but {} sampled coordinates",
                    row.len(),
                    d.sample.len()
                ),
            );
        }
        Ok(())
    }

    /// Reads and checks a vector file.
    ///
    /// # Errors
    /// [`ReplayError`] naming the file and field when it cannot be read, is not valid JSON,
    /// misses a field or has inconsistent lengths.
    pub fn load(path: &Path) -> Result<Self, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks a vector from JSON text; `path` is only used in messages.
    ///
    /// # Errors
    /// As [`Vector::load`].
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::replay::Vector;
    /// let err = Vector::parse("{\"schema_version\": 1}", "v.json".as_ref()).unwrap_err();
    /// assert!(err.to_string().starts_with("v.json: "), "{err}");
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<Self, ReplayError> {
        let malformed = |field: String, message: String| ReplayError::Malformed {
            path: path.to_path_buf(),
            field,
            message,
        };
        let raw: Value =
            serde_json::from_str(text).map_err(|e| malformed(".".into(), e.to_string()))?;
        let Value::Object(raw) = raw else {
            return Err(malformed(".".into(), "expected a JSON object".into()));
        };
        let data: VectorData = serde_path_to_error::deserialize(Value::Object(raw.clone()))
            .map_err(|e| {
                let field = e.path().to_string();
                malformed(field, e.into_inner().to_string())
            })?;
        if data.schema_version != 1 {
            return Err(ReplayError::Unsupported {
                path: path.to_path_buf(),
                field: "schema_version".into(),
                message: format!(
                    "version {}; this build reads version 1",
                    data.schema_version
                ),
            });
        }
        if let Some(generator) = &data.generator {
            Self::check_generated(&data, generator).map_err(|(f, m)| malformed(f, m))?;
        }
        let n = data.initial_params.len();
        for (field, rows) in [
            ("gradients", &data.gradients),
            ("trajectory", &data.trajectory),
        ] {
            if data.generator.is_some() {
                continue;
            }
            if rows.len() != data.steps {
                return Err(malformed(
                    field.into(),
                    format!("{} rows but steps = {}", rows.len(), data.steps),
                ));
            }
            if let Some((k, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != n) {
                return Err(malformed(
                    format!("{field}[{k}]"),
                    format!("{} values but initial_params has {n}", row.len()),
                ));
            }
        }
        if let Some(lrs) = &data.lrs {
            if lrs.len() != data.steps {
                return Err(malformed(
                    "lrs".into(),
                    format!("{} values but steps = {}", lrs.len(), data.steps),
                ));
            }
        }
        let vector = Self {
            path: path.to_path_buf(),
            data,
            raw,
        };
        vector.normalized_algorithm()?;
        Ok(vector)
    }

    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}
