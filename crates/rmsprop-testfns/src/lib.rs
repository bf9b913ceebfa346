//! Objective functions for comparing optimizers: value, analytic gradient, known minimum and
//! sensible plot bounds, each checked against finite differences (`tests/gradients.rs`).
//!
//! ```
//! use rmsprop_testfns::{Objective, Rosenbrock};
//! let f = Rosenbrock::default();
//! assert_eq!(f.value(&[1.0, 1.0]), 0.0);
//! assert_eq!(f.gradient(&[1.0, 1.0]), vec![0.0, 0.0]);
//! ```
#![deny(missing_docs)]

/// A differentiable objective to minimize.
pub trait Objective: Send + Sync {
    /// A short name (`rosenbrock`).
    fn name(&self) -> &'static str;
    /// Number of coordinates.
    fn dim(&self) -> usize;
    /// f(x).
    fn value(&self, x: &[f64]) -> f64;
    /// The analytic gradient at x.
    fn gradient(&self, x: &[f64]) -> Vec<f64>;
    /// A global minimizer (one of them when there are several); the start when none is known
    /// (see [`Objective::minimum_known`]).
    fn minimum(&self) -> Vec<f64>;
    /// Whether [`Objective::minimum`] is a minimizer. When it is not (the adding problem: no
    /// network's best fit is known), distances to the minimum mean nothing and
    /// [`Objective::minimum_value`] is a lower bound.
    fn minimum_known(&self) -> bool {
        true
    }
    /// The minimum value: f at [`Objective::minimum`], or a lower bound when the minimizer is
    /// not known (0 for a mean squared error).
    fn minimum_value(&self) -> f64 {
        self.value(&self.minimum())
    }
    /// The usual starting point.
    fn start(&self) -> Vec<f64>;
    /// Plot bounds `[(min, max)]` per coordinate (2-D objectives).
    fn bounds(&self) -> Vec<(f64, f64)>;

    /// The gradient an optimizer sees at step `step` (0 = the first step). Deterministic,
    /// stationary objectives return [`Objective::gradient`]; noisy ([`Noisy`]), mini-batch
    /// ([`LeastSquares`]) and moving ([`MovingTarget`]) ones depend on the step and their seed,
    /// never on hidden state, so a run is reproducible and can resume at any step.
    fn gradient_at(&self, x: &[f64], step: u64) -> Vec<f64> {
        let _ = step;
        self.gradient(x)
    }
    /// f at time `step` (only moving objectives depend on it).
    fn value_at(&self, x: &[f64], step: u64) -> f64 {
        let _ = step;
        self.value(x)
    }
    /// The minimizer at time `step` (only moving objectives depend on it).
    fn minimum_at(&self, step: u64) -> Vec<f64> {
        let _ = step;
        self.minimum()
    }
    /// Whether the minimum moves with the step.
    fn moving(&self) -> bool {
        false
    }
    /// The coordinates of each layer of a network, the input's first (pictures and the update
    /// ratio compare layers); by default each coordinate is a layer of its own.
    fn layers(&self) -> Vec<std::ops::Range<usize>> {
        (0..self.dim()).map(|i| i..i + 1).collect()
    }
    /// For recurrent networks: the norm of the loss's gradient with respect to the hidden state
    /// `k` steps before the output (`k = 0` the last step), averaged over the sequences, for
    /// every `k`: how the gradient fades (or grows) as it is carried back through time. `None`
    /// for other objectives.
    fn gradient_through_time(&self, x: &[f64]) -> Option<Vec<f64>> {
        let _ = x;
        None
    }
    /// Things worth drawing on a contour plot besides the minimum (bodies, targets).
    fn markers(&self) -> Vec<Marker> {
        Vec::new()
    }
}

/// A point of interest on a 2-D objective's plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Marker {
    /// A body that pulls the path towards it.
    Attractor([f64; 2]),
    /// A body that pushes the path away.
    Repeller([f64; 2]),
    /// Where the path should end.
    Target([f64; 2]),
}

mod stochastic;
pub use stochastic::{LeastSquares, MovingTarget, Noisy, ScaleShift};

/// f(x, y) = x² + y², the classic example; minimum (0, 0), start (5, 4).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sphere;

impl Objective for Sphere {
    fn name(&self) -> &'static str {
        "sphere"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        x.iter().map(|v| v * v).sum()
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        x.iter().map(|v| 2.0 * v).collect()
    }
    fn minimum(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn start(&self) -> Vec<f64> {
        vec![5.0, 4.0]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-6.0, 6.0), (-6.0, 6.0)]
    }
}

/// Rosenbrock's valley f(x, y) = (a - x)² + b (y - x²)² (a = 1, b = 100); minimum (a, a²),
/// start (-1.5, 2).
#[derive(Clone, Copy, Debug)]
pub struct Rosenbrock {
    /// a.
    pub a: f64,
    /// b.
    pub b: f64,
}

impl Default for Rosenbrock {
    fn default() -> Self {
        Self { a: 1.0, b: 100.0 }
    }
}

impl Objective for Rosenbrock {
    fn name(&self) -> &'static str {
        "rosenbrock"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        let (u, v) = (x[0], x[1]);
        (self.a - u).powi(2) + self.b * (v - u * u).powi(2)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let (u, v) = (x[0], x[1]);
        let t = v - u * u;
        vec![-2.0 * (self.a - u) - 4.0 * self.b * u * t, 2.0 * self.b * t]
    }
    fn minimum(&self) -> Vec<f64> {
        vec![self.a, self.a * self.a]
    }
    fn start(&self) -> Vec<f64> {
        vec![-1.5, 2.0]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-2.0, 2.0), (-1.0, 3.0)]
    }
}

/// Booth: f = (x + 2y - 7)² + (2x + y - 5)²; minimum (1, 3).
#[derive(Clone, Copy, Debug, Default)]
pub struct Booth;

impl Objective for Booth {
    fn name(&self) -> &'static str {
        "booth"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        (x[0] + 2.0 * x[1] - 7.0).powi(2) + (2.0 * x[0] + x[1] - 5.0).powi(2)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let (p, q) = (x[0] + 2.0 * x[1] - 7.0, 2.0 * x[0] + x[1] - 5.0);
        vec![2.0 * p + 4.0 * q, 4.0 * p + 2.0 * q]
    }
    fn minimum(&self) -> Vec<f64> {
        vec![1.0, 3.0]
    }
    fn start(&self) -> Vec<f64> {
        vec![-6.0, -6.0]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-10.0, 10.0), (-10.0, 10.0)]
    }
}

/// Beale: f = (1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²; minimum (3, 0.5).
#[derive(Clone, Copy, Debug, Default)]
pub struct Beale;

impl Objective for Beale {
    fn name(&self) -> &'static str {
        "beale"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        let (u, v) = (x[0], x[1]);
        (1.5 - u + u * v).powi(2)
            + (2.25 - u + u * v * v).powi(2)
            + (2.625 - u + u * v.powi(3)).powi(2)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let (u, v) = (x[0], x[1]);
        let a = 1.5 - u + u * v;
        let b = 2.25 - u + u * v * v;
        let c = 2.625 - u + u * v.powi(3);
        vec![
            2.0 * a * (v - 1.0) + 2.0 * b * (v * v - 1.0) + 2.0 * c * (v.powi(3) - 1.0),
            2.0 * a * u + 2.0 * b * 2.0 * u * v + 2.0 * c * 3.0 * u * v * v,
        ]
    }
    fn minimum(&self) -> Vec<f64> {
        vec![3.0, 0.5]
    }
    fn start(&self) -> Vec<f64> {
        vec![1.0, 1.5]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-4.5, 4.5), (-4.5, 4.5)]
    }
}

/// Himmelblau: f = (x² + y - 11)² + (x + y² - 7)²; four minima, (3, 2) among them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Himmelblau;

impl Objective for Himmelblau {
    fn name(&self) -> &'static str {
        "himmelblau"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        (x[0] * x[0] + x[1] - 11.0).powi(2) + (x[0] + x[1] * x[1] - 7.0).powi(2)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let (p, q) = (x[0] * x[0] + x[1] - 11.0, x[0] + x[1] * x[1] - 7.0);
        vec![4.0 * x[0] * p + 2.0 * q, 2.0 * p + 4.0 * x[1] * q]
    }
    fn minimum(&self) -> Vec<f64> {
        vec![3.0, 2.0]
    }
    fn start(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-5.0, 5.0), (-5.0, 5.0)]
    }
}

/// Rastrigin (2-D): f = 20 + Σ (x² - 10 cos 2πx); minimum (0, 0), many local minima.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rastrigin;

impl Objective for Rastrigin {
    fn name(&self) -> &'static str {
        "rastrigin"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        use std::f64::consts::TAU;
        20.0 + x
            .iter()
            .map(|v| v * v - 10.0 * (TAU * v).cos())
            .sum::<f64>()
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        use std::f64::consts::TAU;
        x.iter()
            .map(|v| 2.0 * v + 10.0 * TAU * (TAU * v).sin())
            .collect()
    }
    fn minimum(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn start(&self) -> Vec<f64> {
        vec![3.3, -2.7]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-5.12, 5.12), (-5.12, 5.12)]
    }
}

/// The saddle f = x² - y²: no minimum (the reported point is the saddle at the origin).
#[derive(Clone, Copy, Debug, Default)]
pub struct Saddle;

impl Objective for Saddle {
    fn name(&self) -> &'static str {
        "saddle"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        x[0] * x[0] - x[1] * x[1]
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        vec![2.0 * x[0], -2.0 * x[1]]
    }
    fn minimum(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn start(&self) -> Vec<f64> {
        vec![1.0, 1e-3]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-2.0, 2.0), (-2.0, 2.0)]
    }
}

/// An ill-conditioned quadratic f = (x² + κ y²)/2 with condition number κ; minimum (0, 0).
#[derive(Clone, Copy, Debug)]
pub struct IllConditioned {
    /// Condition number κ.
    pub kappa: f64,
}

impl Default for IllConditioned {
    fn default() -> Self {
        Self { kappa: 100.0 }
    }
}

impl Objective for IllConditioned {
    fn name(&self) -> &'static str {
        "ill_conditioned"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        0.5 * (x[0] * x[0] + self.kappa * x[1] * x[1])
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        vec![x[0], self.kappa * x[1]]
    }
    fn minimum(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn start(&self) -> Vec<f64> {
        vec![4.0, 1.0]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-5.0, 5.0), (-2.0, 2.0)]
    }
}

/// Every named objective: `sphere`, `rosenbrock`, `booth`, `beale`, `himmelblau`, `rastrigin`,
/// `saddle`, `ill_conditioned`, `badly_scaled`, `badly_scaled_rotated` (the same curvatures along
/// the diagonals), `space_navigation`, `quadratic` (100-D, κ = 1e3),
/// `moving_target` (a minimum circling the origin), `scale_shift`, `tanh_chain`, `deep_linear`,
/// `tanh_rnn`, `adding` (a tanh RNN learning the adding problem online), `tanh_mlp` (a deep tanh
/// network) and `least_squares` (full-batch linear
/// regression; [`LeastSquares::with_batch`] makes it mini-batch).
pub fn names() -> &'static [&'static str] {
    &[
        "sphere",
        "rosenbrock",
        "booth",
        "beale",
        "himmelblau",
        "rastrigin",
        "saddle",
        "ill_conditioned",
        "badly_scaled",
        "badly_scaled_rotated",
        "space_navigation",
        "quadratic",
        "moving_target",
        "scale_shift",
        "tanh_chain",
        "deep_linear",
        "tanh_rnn",
        "adding",
        "tanh_mlp",
        "least_squares",
    ]
}

/// The objective called `name`, if any.
///
/// # Examples
/// ```
/// assert_eq!(rmsprop_testfns::by_name("booth").unwrap().minimum(), vec![1.0, 3.0]);
/// assert!(rmsprop_testfns::by_name("nope").is_none());
/// ```
pub fn by_name(name: &str) -> Option<Box<dyn Objective>> {
    Some(match name {
        "sphere" => Box::new(Sphere),
        "rosenbrock" => Box::new(Rosenbrock::default()),
        "booth" => Box::new(Booth),
        "beale" => Box::new(Beale),
        "himmelblau" => Box::new(Himmelblau),
        "rastrigin" => Box::new(Rastrigin),
        "saddle" => Box::new(Saddle),
        "ill_conditioned" => Box::new(IllConditioned::default()),
        "badly_scaled" => Box::new(BadlyScaled::default()),
        "badly_scaled_rotated" => Box::new(RotatedBadlyScaled::default()),
        "space_navigation" => Box::new(SpaceNavigation::default()),
        "quadratic" => Box::new(Quadratic::new(100, 1e3)),
        "moving_target" => Box::new(MovingTarget::default()),
        "scale_shift" => Box::new(ScaleShift::default()),
        "tanh_chain" => Box::new(TanhChain::default()),
        "deep_linear" => Box::new(DeepLinear::default()),
        "tanh_rnn" => Box::new(TanhRnn::default()),
        "adding" => Box::new(TanhRnn::adding_online(8, 20, 16, 64, 0)),
        "tanh_mlp" => Box::new(TanhMlp::default()),
        "least_squares" => Box::new(LeastSquares::default()),
        _ => return None,
    })
}

/// f(x) = Σ s_i x_i² / 2: one coordinate's gradient scaled by `scales[0]`, another by `scales[1]`
/// (default 1e-4 and 1e4) — where one global learning rate fails and a per-parameter one should
/// not. Minimum at the origin.
#[derive(Clone, Debug)]
pub struct BadlyScaled {
    /// Curvature of each coordinate.
    pub scales: Vec<f64>,
}

impl Default for BadlyScaled {
    fn default() -> Self {
        Self {
            scales: vec![1e-4, 1e4],
        }
    }
}

impl Objective for BadlyScaled {
    fn name(&self) -> &'static str {
        "badly_scaled"
    }
    fn dim(&self) -> usize {
        self.scales.len()
    }
    fn value(&self, x: &[f64]) -> f64 {
        x.iter()
            .zip(&self.scales)
            .map(|(v, s)| 0.5 * s * v * v)
            .sum()
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        x.iter().zip(&self.scales).map(|(v, s)| s * v).collect()
    }
    fn minimum(&self) -> Vec<f64> {
        vec![0.0; self.scales.len()]
    }
    fn start(&self) -> Vec<f64> {
        vec![1.0; self.scales.len()]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-1.5, 1.5); self.scales.len()]
    }
}

/// [`BadlyScaled`] turned by 45°: f(x) = Σ s_i (R x)_i² / 2 with R the rotation by `angle`. The
/// curvatures are as far apart as in [`BadlyScaled`], but along the diagonals, so no coordinate
/// alone is steep or flat: the case a per-coordinate step size cannot straighten out.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{Objective, RotatedBadlyScaled};
/// let f = RotatedBadlyScaled::default();
/// let g = f.gradient(&[1.0, 1.0]);
/// // Along a diagonal both coordinates see the same (large or small) curvature.
/// assert!((g[0] - g[1]).abs() < 1e-9 * g[0].abs().max(1.0));
/// assert_eq!(f.value(&f.minimum()), 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct RotatedBadlyScaled {
    /// Curvature along each rotated axis.
    pub scales: [f64; 2],
    /// Rotation, radians.
    pub angle: f64,
}

impl Default for RotatedBadlyScaled {
    fn default() -> Self {
        Self {
            scales: [1e-4, 1e4],
            angle: std::f64::consts::FRAC_PI_4,
        }
    }
}

impl RotatedBadlyScaled {
    fn rotate(&self, x: &[f64]) -> [f64; 2] {
        let (s, c) = self.angle.sin_cos();
        [c * x[0] - s * x[1], s * x[0] + c * x[1]]
    }
}

impl Objective for RotatedBadlyScaled {
    fn name(&self) -> &'static str {
        "badly_scaled_rotated"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        let y = self.rotate(x);
        0.5 * (self.scales[0] * y[0] * y[0] + self.scales[1] * y[1] * y[1])
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        // R^T S R x
        let y = self.rotate(x);
        let (s, c) = self.angle.sin_cos();
        let (a, b) = (self.scales[0] * y[0], self.scales[1] * y[1]);
        vec![c * a + s * b, -s * a + c * b]
    }
    fn minimum(&self) -> Vec<f64> {
        vec![0.0, 0.0]
    }
    fn start(&self) -> Vec<f64> {
        vec![1.3, -0.7]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-1.5, 1.5); 2]
    }
}

/// A high-dimensional quadratic f = Σ λ_i x_i² / 2 with eigenvalues log-spaced from 1 to κ.
#[derive(Clone, Debug)]
pub struct Quadratic {
    /// Eigenvalues.
    pub lambdas: Vec<f64>,
}

impl Quadratic {
    /// `dim` coordinates, condition number `kappa`.
    ///
    /// # Examples
    /// ```
    /// let q = rmsprop_testfns::Quadratic::new(100, 1e3);
    /// assert_eq!(q.lambdas.len(), 100);
    /// assert!((q.lambdas[99] - 1e3).abs() < 1e-9);
    /// ```
    pub fn new(dim: usize, kappa: f64) -> Self {
        let n = dim.max(2);
        Self {
            lambdas: (0..n)
                .map(|i| kappa.powf(i as f64 / (n - 1) as f64))
                .collect(),
        }
    }
}

impl Objective for Quadratic {
    fn name(&self) -> &'static str {
        "quadratic"
    }
    fn dim(&self) -> usize {
        self.lambdas.len()
    }
    fn value(&self, x: &[f64]) -> f64 {
        x.iter()
            .zip(&self.lambdas)
            .map(|(v, l)| 0.5 * l * v * v)
            .sum()
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        x.iter().zip(&self.lambdas).map(|(v, l)| l * v).collect()
    }
    fn minimum(&self) -> Vec<f64> {
        vec![0.0; self.lambdas.len()]
    }
    fn start(&self) -> Vec<f64> {
        vec![1.0; self.lambdas.len()]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-1.5, 1.5); self.lambdas.len()]
    }
}

/// Space navigation: steer a ship to `target` through bodies that attract (strength < 0) or repel
/// (strength > 0): f = |x - target|² + Σ s_k / (|x - b_k|² + softening).
#[derive(Clone, Debug)]
pub struct SpaceNavigation {
    /// Where the ship should go.
    pub target: [f64; 2],
    /// Bodies: position and strength.
    pub bodies: Vec<([f64; 2], f64)>,
    /// Keeps the potential finite at a body's centre.
    pub softening: f64,
}

impl Default for SpaceNavigation {
    fn default() -> Self {
        Self {
            target: [4.0, 3.0],
            bodies: vec![
                ([0.0, 0.5], 6.0),
                ([2.5, 2.0], 4.0),
                ([1.5, -1.5], -3.0),
                ([3.0, 4.5], 3.0),
            ],
            softening: 0.3,
        }
    }
}

impl Objective for SpaceNavigation {
    fn name(&self) -> &'static str {
        "space_navigation"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        let d = (x[0] - self.target[0]).powi(2) + (x[1] - self.target[1]).powi(2);
        d + self
            .bodies
            .iter()
            .map(|(b, s)| s / ((x[0] - b[0]).powi(2) + (x[1] - b[1]).powi(2) + self.softening))
            .sum::<f64>()
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![2.0 * (x[0] - self.target[0]), 2.0 * (x[1] - self.target[1])];
        for (b, s) in &self.bodies {
            let r2 = (x[0] - b[0]).powi(2) + (x[1] - b[1]).powi(2) + self.softening;
            g[0] -= s * 2.0 * (x[0] - b[0]) / (r2 * r2);
            g[1] -= s * 2.0 * (x[1] - b[1]) / (r2 * r2);
        }
        g
    }
    /// The minimum near the target (the bodies' potential shifts it slightly), found by gradient
    /// descent from the target.
    fn minimum(&self) -> Vec<f64> {
        let mut x = self.target.to_vec();
        for _ in 0..20_000 {
            let g = self.gradient(&x);
            x[0] -= 0.01 * g[0];
            x[1] -= 0.01 * g[1];
        }
        x
    }
    fn start(&self) -> Vec<f64> {
        vec![-3.0, -2.0]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-4.0, 6.0), (-3.5, 6.0)]
    }
    fn markers(&self) -> Vec<Marker> {
        let mut m: Vec<Marker> = self
            .bodies
            .iter()
            .map(|(b, s)| {
                if *s < 0.0 {
                    Marker::Attractor(*b)
                } else {
                    Marker::Repeller(*b)
                }
            })
            .collect();
        m.push(Marker::Target(self.target));
        m
    }
}

/// The README's examples, run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// A deep tanh network one unit wide: weights `w_1..w_L`, `h_0 = x`, `h_l = tanh(w_l h_(l-1))`,
/// and f(w) the mean of `(h_L(x) - t)^2 / 2` over a few inputs x whose targets t come from a
/// teacher chain with weights `teacher` (so f's minimum is 0, at the teacher).
///
/// Backpropagation multiplies the error by `w_l (1 - h_l^2)` per layer; where the units are
/// near saturation that factor is small, so the first layers' gradient is many times smaller
/// than the last's: from the default start (16 layers, every weight 1.5, teacher 1.0) about
/// 7e5 times (vanishing). Once a unit saturates (`tanh` = ±1 in floating point), its factor is
/// exactly 0 and no gradient reaches the layers below it at all.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{Objective, TanhChain};
/// let f = TanhChain::default();
/// assert_eq!(f.value(&f.minimum()), 0.0);
/// let g = f.gradient(&f.start());
/// assert!(g[0].abs() * 1e5 < g[15].abs()); // the first layer's gradient has vanished
/// ```
#[derive(Clone, Debug)]
pub struct TanhChain {
    /// The teacher's weights (and the number of layers).
    pub teacher: Vec<f64>,
    /// The inputs.
    pub inputs: Vec<f64>,
    /// The weights training starts from.
    pub init: Vec<f64>,
}

impl Default for TanhChain {
    fn default() -> Self {
        Self {
            teacher: vec![1.0; 16],
            inputs: vec![-2.0, -1.0, -0.5, 0.5, 1.0, 2.0],
            init: vec![1.5; 16],
        }
    }
}

impl TanhChain {
    /// The activations `h_0..h_L` for input `x`.
    fn forward(w: &[f64], x: f64) -> Vec<f64> {
        let mut h = Vec::with_capacity(w.len() + 1);
        h.push(x);
        for (l, wl) in w.iter().enumerate() {
            h.push((wl * h[l]).tanh());
        }
        h
    }

    fn target(&self, x: f64) -> f64 {
        *Self::forward(&self.teacher, x)
            .last()
            .expect("one layer at least")
    }
}

impl Objective for TanhChain {
    fn name(&self) -> &'static str {
        "tanh_chain"
    }
    fn dim(&self) -> usize {
        self.teacher.len()
    }
    fn value(&self, w: &[f64]) -> f64 {
        let n = self.inputs.len() as f64;
        self.inputs
            .iter()
            .map(|&x| {
                let e = Self::forward(w, x).last().expect("one layer at least") - self.target(x);
                0.5 * e * e
            })
            .sum::<f64>()
            / n
    }
    fn gradient(&self, w: &[f64]) -> Vec<f64> {
        let n = self.inputs.len() as f64;
        let mut g = vec![0.0; w.len()];
        for &x in &self.inputs {
            let h = Self::forward(w, x);
            // d/d(pre-activation of layer l), from the top down.
            let mut delta = (h[w.len()] - self.target(x)) * (1.0 - h[w.len()] * h[w.len()]);
            for l in (0..w.len()).rev() {
                g[l] += delta * h[l] / n;
                delta *= w[l] * (1.0 - h[l] * h[l]);
            }
        }
        g
    }
    fn minimum(&self) -> Vec<f64> {
        self.teacher.clone()
    }
    fn start(&self) -> Vec<f64> {
        self.init.clone()
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-3.0, 3.0); self.teacher.len()]
    }
}

/// A deep linear chain one unit wide, `y = x * w_1 * ... * w_L`, fitting the identity: f is
/// the mean of `(y - x)^2 / 2` over fixed inputs. Started with every weight at 1.25 (16 layers),
/// the product is 1.25^16 = 35.5 and the gradient, `(P - 1) P / w_l` per weight times the
/// inputs' mean square, is about 1,150 in every coordinate: backpropagation multiplies by each
/// weight above 1, so gradients explode with depth. Near a minimum (any weights whose product
/// is 1) the curvature is about the inputs' mean square: a rate that suits the end throws
/// gradient descent off the start. Minimum value 0, at every weight 1 (among others).
///
/// # Examples
/// ```
/// use rmsprop_testfns::{DeepLinear, Objective};
/// let f = DeepLinear::default();
/// assert_eq!(f.value(&f.minimum()), 0.0);
/// let g = f.gradient(&f.start());
/// assert!(g.iter().all(|x| *x > 1000.0)); // exploded
/// ```
#[derive(Clone, Debug)]
pub struct DeepLinear {
    /// Layers.
    pub layers: usize,
    /// The inputs.
    pub inputs: Vec<f64>,
    /// The weight every layer starts from.
    pub init: f64,
}

impl Default for DeepLinear {
    fn default() -> Self {
        Self {
            layers: 16,
            inputs: vec![-1.5, -1.0, -0.5, 0.5, 1.0, 1.5],
            init: 1.25,
        }
    }
}

impl DeepLinear {
    fn mean_square(&self) -> f64 {
        self.inputs.iter().map(|x| x * x).sum::<f64>() / self.inputs.len() as f64
    }
}

impl Objective for DeepLinear {
    fn name(&self) -> &'static str {
        "deep_linear"
    }
    fn dim(&self) -> usize {
        self.layers
    }
    fn value(&self, w: &[f64]) -> f64 {
        let p: f64 = w.iter().product();
        0.5 * (p - 1.0) * (p - 1.0) * self.mean_square()
    }
    fn gradient(&self, w: &[f64]) -> Vec<f64> {
        let p: f64 = w.iter().product();
        let c = (p - 1.0) * self.mean_square();
        // d P / d w_l is the product of the other weights (no division, so a zero weight is fine).
        (0..w.len())
            .map(|l| {
                let others: f64 = w
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != l)
                    .map(|(_, v)| v)
                    .product();
                c * others
            })
            .collect()
    }
    fn minimum(&self) -> Vec<f64> {
        vec![1.0; self.layers]
    }
    fn start(&self) -> Vec<f64> {
        vec![self.init; self.layers]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-2.0, 2.0); self.layers]
    }
}

/// A plain tanh RNN, `hidden` units, reading a sequence of `inputs`-vectors: `h_0 = 0`,
/// `h_t = tanh(W_in x_t + W h_(t-1) + b)`, output `y = w_out . h_T + b_out`; f is the mean of
/// `(y - target)^2 / 2` over a fixed seeded set of sequences.
///
/// Two problems. [`TanhRnn::new`] (the default; `tanh_rnn`) reads scalars and its targets come
/// from a teacher RNN with a long memory (recurrent weights 0.99, 0.95, 0.9 and 0.5 on the
/// diagonal), so the output depends on inputs tens of steps back and f's minimum is 0, at the
/// teacher. [`TanhRnn::adding`] and [`TanhRnn::adding_online`] (`adding`) are the adding problem
/// (Hochreiter & Schmidhuber 1997): each step reads a value from U(0, 1) and a marker, one
/// marked step in each half of the sequence, and the target is the sum of the two marked
/// values. No minimizer is known there: [`Objective::minimum_known`] is false and the gap is f
/// itself (its lower bound is 0). Predicting the mean sum, 1, gives f = 1/12 (the sum's
/// variance 1/6, halved).
///
/// Parameters, in order: `W_in` (hidden x inputs, row-major), `W` (hidden x hidden,
/// row-major), `b` (hidden), `w_out` (hidden), `b_out`. The start is PyTorch's RNN
/// initialization, U(-1/sqrt(hidden), 1/sqrt(hidden)), seeded. Backpropagation through time
/// multiplies by `W^T diag(1 - h^2)` per step, which is what makes long dependencies hard for
/// gradient descent.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{Objective, TanhRnn};
/// let f = TanhRnn::default();
/// assert_eq!(f.dim(), 4 + 16 + 4 + 4 + 1);
/// assert_eq!(f.value(&f.minimum()), 0.0);
/// assert!(f.value(&f.start()) > 0.01);
/// let adding = TanhRnn::adding(8, 30, 64, 0);
/// assert_eq!(adding.dim(), 16 + 64 + 8 + 8 + 1);
/// assert!(!adding.minimum_known());
/// assert_eq!(adding.minimum_value(), 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct TanhRnn {
    hidden: usize,
    inputs: usize,
    /// Each sequence flattened: `length` steps of `inputs` values.
    sequences: Vec<Vec<f64>>,
    teacher: Option<Vec<f64>>,
    targets: Vec<f64>,
    init: Vec<f64>,
    /// The adding problem's training batches, `(batch, length, seed)`: a fresh seeded batch per
    /// step; f (and [`Objective::gradient`]) are then measured on the held-out sequences.
    online: Option<(usize, usize, u64)>,
}

impl Default for TanhRnn {
    fn default() -> Self {
        Self::new(4, 50, 32, 0)
    }
}

impl TanhRnn {
    /// `hidden` units, `sequences` sequences of `length` inputs drawn from U(-1, 1), seeded;
    /// targets from the long-memory teacher.
    pub fn new(hidden: usize, length: usize, sequences: usize, seed: u64) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let sequences: Vec<Vec<f64>> = (0..sequences)
            .map(|_| (0..length).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let h = hidden;
        let memory = [0.99, 0.95, 0.9, 0.5];
        let mut teacher = vec![0.0; 3 * h + h * h + 1];
        for i in 0..h {
            teacher[i] = 0.5; // w_in
            teacher[h + i * h + i] = memory[i % memory.len()]; // W's diagonal
            teacher[h + h * h + h + i] = if i % 2 == 0 { 1.0 } else { -1.0 }; // w_out
        }
        let mut f = Self {
            hidden,
            inputs: 1,
            sequences,
            teacher: None,
            targets: Vec::new(),
            init: Self::initial(h, 1, &mut rng),
            online: None,
        };
        f.targets = f
            .sequences
            .iter()
            .map(|s| f.forward(&teacher, s).1)
            .collect();
        f.teacher = Some(teacher);
        f
    }

    /// The adding problem on a fixed set: `hidden` units, `sequences` seeded sequences of
    /// `length` steps, each step a value from U(0, 1) and a marker (1 at one step of each half,
    /// else 0); the target is the sum of the two marked values.
    pub fn adding(hidden: usize, length: usize, sequences: usize, seed: u64) -> Self {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (sequences, targets) = adding_sequences(length, sequences, &mut rng);
        Self {
            hidden,
            inputs: 2,
            sequences,
            teacher: None,
            targets,
            init: Self::initial(hidden, 2, &mut rng),
            online: None,
        }
    }

    /// The adding problem learned online: each step's gradient is taken on a fresh seeded batch of
    /// `batch` sequences (so no finite set can be memorized), and f is the error on the
    /// `held_out` sequences of [`TanhRnn::adding`], which no batch contains.
    pub fn adding_online(
        hidden: usize,
        length: usize,
        batch: usize,
        held_out: usize,
        seed: u64,
    ) -> Self {
        Self {
            online: Some((batch, length, seed)),
            ..Self::adding(hidden, length, held_out, seed)
        }
    }

    /// PyTorch's initialization: every parameter from U(-1/sqrt(hidden), 1/sqrt(hidden)).
    fn initial(hidden: usize, inputs: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f64> {
        use rand::Rng;
        let bound = 1.0 / (hidden as f64).sqrt();
        (0..hidden * inputs + hidden * hidden + 2 * hidden + 1)
            .map(|_| rng.random_range(-bound..bound))
            .collect()
    }

    /// Offsets of `W`, `b`, `w_out` and `b_out` in the parameters.
    fn offsets(&self) -> (usize, usize, usize, usize) {
        let (h, d) = (self.hidden, self.inputs);
        let rec = h * d;
        (rec, rec + h * h, rec + h * h + h, rec + h * h + 2 * h)
    }

    /// The hidden states `h_0..h_T` (flattened, `hidden` each) and the output.
    fn forward(&self, w: &[f64], x: &[f64]) -> (Vec<f64>, f64) {
        let (h, d) = (self.hidden, self.inputs);
        let (o_rec, o_b, o_out, o_bout) = self.offsets();
        let steps = x.len() / d;
        let mut states = vec![0.0; (steps + 1) * h];
        for t in 0..steps {
            let xt = &x[t * d..(t + 1) * d];
            for i in 0..h {
                let mut a = w[o_b + i];
                for k in 0..d {
                    a += w[i * d + k] * xt[k];
                }
                for j in 0..h {
                    a += w[o_rec + i * h + j] * states[t * h + j];
                }
                states[(t + 1) * h + i] = a.tanh();
            }
        }
        let last = &states[steps * h..];
        let y = w[o_bout] + (0..h).map(|i| w[o_out + i] * last[i]).sum::<f64>();
        (states, y)
    }

    /// The mean squared error's gradient over `sequences` and their `targets`
    /// (backpropagation through time).
    fn gradient_on(&self, w: &[f64], sequences: &[Vec<f64>], targets: &[f64]) -> Vec<f64> {
        self.backprop(w, sequences, targets, &mut |_, _| {})
    }

    /// Backpropagation through time over `sequences`, calling `seen(k, dh)` with the gradient
    /// with respect to the hidden state `k` steps before the output; returns the gradient.
    fn backprop(
        &self,
        w: &[f64],
        sequences: &[Vec<f64>],
        targets: &[f64],
        seen: &mut dyn FnMut(usize, &[f64]),
    ) -> Vec<f64> {
        let (h, d) = (self.hidden, self.inputs);
        let (o_rec, o_b, o_out, o_bout) = self.offsets();
        let n = sequences.len() as f64;
        let mut g = vec![0.0; w.len()];
        for (x, t) in sequences.iter().zip(targets) {
            let (states, y) = self.forward(w, x);
            let dy = (y - t) / n;
            let steps = x.len() / d;
            let mut dh: Vec<f64> = (0..h).map(|i| dy * w[o_out + i]).collect();
            for i in 0..h {
                g[o_out + i] += dy * states[steps * h + i];
            }
            g[o_bout] += dy;
            for s in (1..=steps).rev() {
                seen(steps - s, &dh);
                let da: Vec<f64> = (0..h)
                    .map(|i| dh[i] * (1.0 - states[s * h + i] * states[s * h + i]))
                    .collect();
                let xs = &x[(s - 1) * d..s * d];
                for i in 0..h {
                    for k in 0..d {
                        g[i * d + k] += da[i] * xs[k];
                    }
                    g[o_b + i] += da[i];
                    for j in 0..h {
                        g[o_rec + i * h + j] += da[i] * states[(s - 1) * h + j];
                    }
                }
                dh = (0..h)
                    .map(|j| (0..h).map(|i| w[o_rec + i * h + j] * da[i]).sum())
                    .collect();
            }
        }
        g
    }
}

/// `n` adding-problem sequences of `length` steps (value, marker) and their targets.
fn adding_sequences(
    length: usize,
    n: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    use rand::Rng;
    let mut targets = Vec::with_capacity(n);
    let sequences = (0..n)
        .map(|_| {
            let a = rng.random_range(0..length / 2);
            let b = rng.random_range(length / 2..length);
            let mut x = Vec::with_capacity(2 * length);
            let mut sum = 0.0;
            for t in 0..length {
                let v: f64 = rng.random();
                let marked = t == a || t == b;
                if marked {
                    sum += v;
                }
                x.extend([v, if marked { 1.0 } else { 0.0 }]);
            }
            targets.push(sum);
            x
        })
        .collect();
    (sequences, targets)
}

impl Objective for TanhRnn {
    fn name(&self) -> &'static str {
        if self.teacher.is_some() {
            "tanh_rnn"
        } else {
            "adding"
        }
    }
    fn dim(&self) -> usize {
        self.init.len()
    }
    fn value(&self, w: &[f64]) -> f64 {
        let n = self.sequences.len() as f64;
        self.sequences
            .iter()
            .zip(&self.targets)
            .map(|(s, t)| {
                let e = self.forward(w, s).1 - t;
                0.5 * e * e
            })
            .sum::<f64>()
            / n
    }
    fn gradient(&self, w: &[f64]) -> Vec<f64> {
        self.gradient_on(w, &self.sequences, &self.targets)
    }
    fn gradient_at(&self, w: &[f64], step: u64) -> Vec<f64> {
        let Some((batch, length, seed)) = self.online else {
            return self.gradient(w);
        };
        use rand::SeedableRng;
        // A stream per step, apart from the held-out sequences' (stream 0).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(step + 1);
        let (sequences, targets) = adding_sequences(length, batch, &mut rng);
        self.gradient_on(w, &sequences, &targets)
    }
    fn minimum(&self) -> Vec<f64> {
        self.teacher.clone().unwrap_or_else(|| self.init.clone())
    }
    fn minimum_known(&self) -> bool {
        self.teacher.is_some()
    }
    fn gradient_through_time(&self, x: &[f64]) -> Option<Vec<f64>> {
        let steps = self.sequences.first()?.len() / self.inputs;
        let mut sums = vec![0.0; steps];
        self.backprop(x, &self.sequences, &self.targets, &mut |k, dh| {
            sums[k] += dh.iter().map(|v| v * v).sum::<f64>().sqrt();
        });
        let n = self.sequences.len() as f64;
        Some(sums.into_iter().map(|v| v / n).collect())
    }
    fn minimum_value(&self) -> f64 {
        match &self.teacher {
            Some(t) => self.value(t),
            None => 0.0,
        }
    }
    fn start(&self) -> Vec<f64> {
        self.init.clone()
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-2.0, 2.0); self.dim()]
    }
}

/// A deep tanh network (multi-layer perceptron) fitting a teacher of the same shape:
/// `inputs` inputs, `depth` hidden layers of `width` tanh units, one linear output; f is the
/// mean of `(y - y_teacher)^2 / 2` over fixed seeded inputs from U(-1, 1), so its minimum is 0,
/// at the teacher (one minimizer of many: units can be permuted and signs flipped).
///
/// The teacher's weights are drawn from U(-1.5/sqrt(fan_in), 1.5/sqrt(fan_in)), large enough to
/// carry a signal through every layer, and its output layer is scaled so that the targets'
/// standard deviation is 1 (predicting their mean gives f = 0.5); training starts from PyTorch's default initialization,
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), whose layers shrink the signal and the backpropagated
/// gradient by about 0.6 each: from the default start (4 inputs, 10 layers of 8) the first
/// layer's gradient is about 100 times smaller than the last's (vanishing, but not lost).
///
/// Parameters, layer by layer from the input: each layer's weights (`width x fan_in`,
/// row-major) then its biases; the output layer last. [`Objective::layers`] gives each layer's
/// range.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{Objective, TanhMlp};
/// let f = TanhMlp::default();
/// assert_eq!(f.value(&f.minimum()), 0.0);
/// assert_eq!(f.layers().len(), 11); // 10 hidden layers and the output
/// let g = f.gradient(&f.start());
/// let norm = |r: std::ops::Range<usize>| g[r].iter().map(|x| x * x).sum::<f64>().sqrt();
/// let layers = f.layers();
/// assert!(norm(layers[0].clone()) * 30.0 < norm(layers[9].clone()));
/// ```
#[derive(Clone, Debug)]
pub struct TanhMlp {
    inputs: usize,
    width: usize,
    depth: usize,
    points: Vec<Vec<f64>>,
    targets: Vec<f64>,
    teacher: Vec<f64>,
    init: Vec<f64>,
}

impl Default for TanhMlp {
    fn default() -> Self {
        Self::new(4, 8, 10, 32, 0)
    }
}

impl TanhMlp {
    /// `inputs` inputs, `depth` hidden layers of `width` units, `points` seeded inputs.
    pub fn new(inputs: usize, width: usize, depth: usize, points: usize, seed: u64) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let points: Vec<Vec<f64>> = (0..points)
            .map(|_| (0..inputs).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let mut f = Self {
            inputs,
            width,
            depth,
            points,
            targets: Vec::new(),
            teacher: Vec::new(),
            init: Vec::new(),
        };
        let draw = |gain: f64, rng: &mut rand_chacha::ChaCha8Rng| -> Vec<f64> {
            let mut w = Vec::new();
            for (fan_in, fan_out) in f.shapes() {
                let bound = gain / (fan_in as f64).sqrt();
                w.extend((0..fan_out * (fan_in + 1)).map(|_| rng.random_range(-bound..bound)));
            }
            w
        };
        let mut teacher = draw(1.5, &mut rng);
        let init = draw(1.0, &mut rng);
        // The output layer scaled so that the targets vary by 1 (standard deviation).
        let raw: Vec<f64> = f.points.iter().map(|x| f.forward(&teacher, x).1).collect();
        let m = raw.iter().sum::<f64>() / raw.len() as f64;
        let sd = (raw.iter().map(|y| (y - m) * (y - m)).sum::<f64>() / raw.len() as f64).sqrt();
        let out = teacher.len() - (width + 1);
        for w in &mut teacher[out..] {
            *w /= sd;
        }
        f.targets = f.points.iter().map(|x| f.forward(&teacher, x).1).collect();
        f.teacher = teacher;
        f.init = init;
        f
    }

    /// `(fan_in, fan_out)` of each layer, the output last.
    fn shapes(&self) -> Vec<(usize, usize)> {
        let mut s = vec![(self.inputs, self.width)];
        s.extend((1..self.depth).map(|_| (self.width, self.width)));
        s.push((self.width, 1));
        s
    }

    /// Every layer's activations (the input first, the output last; hidden ones after tanh).
    fn forward(&self, w: &[f64], x: &[f64]) -> (Vec<Vec<f64>>, f64) {
        let mut acts = vec![x.to_vec()];
        let mut at = 0;
        let shapes = self.shapes();
        for (l, &(fan_in, fan_out)) in shapes.iter().enumerate() {
            let input = acts.last().expect("the input");
            let (weights, biases) = (
                &w[at..at + fan_out * fan_in],
                &w[at + fan_out * fan_in..at + fan_out * (fan_in + 1)],
            );
            let out: Vec<f64> = (0..fan_out)
                .map(|i| {
                    let a = biases[i]
                        + (0..fan_in)
                            .map(|j| weights[i * fan_in + j] * input[j])
                            .sum::<f64>();
                    if l + 1 < shapes.len() {
                        a.tanh()
                    } else {
                        a
                    }
                })
                .collect();
            at += fan_out * (fan_in + 1);
            acts.push(out);
        }
        let y = acts.last().expect("the output")[0];
        (acts, y)
    }
}

impl Objective for TanhMlp {
    fn name(&self) -> &'static str {
        "tanh_mlp"
    }
    fn dim(&self) -> usize {
        self.teacher.len()
    }
    fn value(&self, w: &[f64]) -> f64 {
        let n = self.points.len() as f64;
        self.points
            .iter()
            .zip(&self.targets)
            .map(|(x, t)| {
                let e = self.forward(w, x).1 - t;
                0.5 * e * e
            })
            .sum::<f64>()
            / n
    }
    fn gradient(&self, w: &[f64]) -> Vec<f64> {
        let n = self.points.len() as f64;
        let shapes = self.shapes();
        let ranges = self.layers();
        let mut g = vec![0.0; w.len()];
        for (x, t) in self.points.iter().zip(&self.targets) {
            let (acts, y) = self.forward(w, x);
            // d loss / d pre-activation of the current layer, from the output down.
            let mut delta = vec![(y - t) / n];
            for l in (0..shapes.len()).rev() {
                let (fan_in, fan_out) = shapes[l];
                let at = ranges[l].start;
                let input = &acts[l];
                for i in 0..fan_out {
                    for j in 0..fan_in {
                        g[at + i * fan_in + j] += delta[i] * input[j];
                    }
                    g[at + fan_out * fan_in + i] += delta[i];
                }
                if l > 0 {
                    delta = (0..fan_in)
                        .map(|j| {
                            let back: f64 = (0..fan_out)
                                .map(|i| w[at + i * fan_in + j] * delta[i])
                                .sum();
                            back * (1.0 - input[j] * input[j])
                        })
                        .collect();
                }
            }
        }
        g
    }
    fn minimum(&self) -> Vec<f64> {
        self.teacher.clone()
    }
    fn start(&self) -> Vec<f64> {
        self.init.clone()
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-2.0, 2.0); self.dim()]
    }
    fn layers(&self) -> Vec<std::ops::Range<usize>> {
        let mut at = 0;
        self.shapes()
            .into_iter()
            .map(|(fan_in, fan_out)| {
                let r = at..at + fan_out * (fan_in + 1);
                at = r.end;
                r
            })
            .collect()
    }
}
