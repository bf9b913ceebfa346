//! The framework presets a vector is replayed with.

use std::fmt;

use clap::ValueEnum;
use rmsprop::RmsPropConfig;
use serde::Deserialize;

/// A framework preset a vector is replayed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// [`RmsPropConfig::pytorch`].
    Pytorch,
    /// [`RmsPropConfig::keras`].
    Keras,
    /// [`RmsPropConfig::tf1`].
    Tf1,
    /// [`RmsPropConfig::optax`].
    Optax,
    /// [`RmsPropConfig::timm_tf`].
    TimmTf,
    /// [`RmsPropConfig::graves`].
    Graves,
    /// [`RmsPropConfig::lesson`].
    Lesson,
}

impl Preset {
    /// The preset's configuration.
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::replay::Preset;
    /// assert_eq!(Preset::Keras.config(), rmsprop::RmsPropConfig::keras());
    /// ```
    pub fn config(self) -> RmsPropConfig {
        match self {
            Preset::Pytorch => RmsPropConfig::pytorch(),
            Preset::Keras => RmsPropConfig::keras(),
            Preset::Tf1 => RmsPropConfig::tf1(),
            Preset::Optax => RmsPropConfig::optax(),
            Preset::TimmTf => RmsPropConfig::timm_tf(),
            Preset::Graves => RmsPropConfig::graves(),
            Preset::Lesson => RmsPropConfig::lesson(),
        }
    }

    /// The preset matching a vector's `framework` field, if any.
    ///
    /// # Examples
    /// ```
    /// use rmsprop_cli::replay::Preset;
    /// assert_eq!(Preset::for_framework("torch"), Some(Preset::Pytorch));
    /// assert_eq!(Preset::for_framework("mxnet"), None);
    /// ```
    pub fn for_framework(framework: &str) -> Option<Preset> {
        match framework {
            "torch" | "pytorch" => Some(Preset::Pytorch),
            "keras" => Some(Preset::Keras),
            "tf1" | "tensorflow" => Some(Preset::Tf1),
            "optax" => Some(Preset::Optax),
            "timm" => Some(Preset::TimmTf),
            "numpy" | "lesson" => Some(Preset::Lesson),
            _ => None,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        f.write_str(&name)
    }
}
