//! Objectives whose gradient depends on the step: seeded noise, mini-batches, a moving minimum.
//!
//! Every one is a pure function of (x, step, seed): no hidden state, so two runs with the same
//! seed see the same gradients, and a run resumed at step k sees what it would have seen.

use std::f64::consts::PI;
use std::sync::Mutex;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Marker, Objective};

/// A generator for (seed, stream): independent, reproducible streams per step or epoch.
fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Any objective with seeded Gaussian noise N(0, scale²) added to each coordinate of the
/// gradient at every step; values and minima stay the noiseless ones.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{Noisy, Objective, Sphere};
/// let f = Noisy::new(Box::new(Sphere), 0.5, 7);
/// let g = f.gradient_at(&[1.0, 1.0], 3);
/// assert_eq!(g, f.gradient_at(&[1.0, 1.0], 3)); // same seed and step: same noise
/// assert_ne!(g, f.gradient_at(&[1.0, 1.0], 4));
/// assert_eq!(f.value(&[1.0, 1.0]), 2.0);
/// ```
pub struct Noisy {
    inner: Box<dyn Objective>,
    /// Standard deviation of the noise.
    pub scale: f64,
    /// Seed of the noise.
    pub seed: u64,
}

impl Noisy {
    /// Wraps `inner`, adding N(0, `scale`²) per coordinate, seeded by `seed`.
    pub fn new(inner: Box<dyn Objective>, scale: f64, seed: u64) -> Self {
        Self { inner, scale, seed }
    }
}

impl Objective for Noisy {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn value(&self, x: &[f64]) -> f64 {
        self.inner.value(x)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        self.gradient_at(x, 0)
    }
    fn gradient_at(&self, x: &[f64], step: u64) -> Vec<f64> {
        let mut g = self.inner.gradient_at(x, step);
        let mut r = rng(self.seed, step);
        for v in &mut g {
            let z: f64 = StandardNormal.sample(&mut r);
            *v += self.scale * z;
        }
        g
    }
    fn value_at(&self, x: &[f64], step: u64) -> f64 {
        self.inner.value_at(x, step)
    }
    fn minimum(&self) -> Vec<f64> {
        self.inner.minimum()
    }
    fn minimum_at(&self, step: u64) -> Vec<f64> {
        self.inner.minimum_at(step)
    }
    fn moving(&self) -> bool {
        self.inner.moving()
    }
    fn start(&self) -> Vec<f64> {
        self.inner.start()
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        self.inner.bounds()
    }
    fn markers(&self) -> Vec<Marker> {
        self.inner.markers()
    }
}

/// The online-learning case: f(x, t) = |x - c(t)|² / 2 with the minimum c(t) going round a
/// circle of `radius` once every `period` steps. Starts on the minimum, which then moves away.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{MovingTarget, Objective};
/// let f = MovingTarget::default();
/// assert_eq!(f.minimum_at(0), vec![2.0, 0.0]);
/// let quarter = f.minimum_at(50);
/// assert!(quarter[0].abs() < 1e-12 && (quarter[1] - 2.0).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MovingTarget {
    /// Radius of the circle.
    pub radius: f64,
    /// Steps per turn.
    pub period: f64,
}

impl Default for MovingTarget {
    fn default() -> Self {
        Self {
            radius: 2.0,
            period: 200.0,
        }
    }
}

impl Objective for MovingTarget {
    fn name(&self) -> &'static str {
        "moving_target"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        self.value_at(x, 0)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        self.gradient_at(x, 0)
    }
    fn gradient_at(&self, x: &[f64], step: u64) -> Vec<f64> {
        let c = self.minimum_at(step);
        vec![x[0] - c[0], x[1] - c[1]]
    }
    fn value_at(&self, x: &[f64], step: u64) -> f64 {
        let c = self.minimum_at(step);
        0.5 * ((x[0] - c[0]).powi(2) + (x[1] - c[1]).powi(2))
    }
    fn minimum(&self) -> Vec<f64> {
        self.minimum_at(0)
    }
    fn minimum_at(&self, step: u64) -> Vec<f64> {
        let a = 2.0 * PI * step as f64 / self.period;
        vec![self.radius * a.cos(), self.radius * a.sin()]
    }
    fn moving(&self) -> bool {
        true
    }
    fn start(&self) -> Vec<f64> {
        self.minimum_at(0)
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        let r = self.radius * 1.5;
        vec![(-r, r), (-r, r)]
    }
}

/// A sudden change in the gradient's scale: f(x, t) = s(t) Σ |x_i - c_i(t)|, whose gradient
/// has size s(t) in every coordinate wherever x is (the sign of x - c, times s). For the first
/// `shift_at` steps s = `scale_before` and the minimum is `before`; from then on
/// s = `scale_after` and the minimum is `after`. An optimizer that divides by a running average
/// of squared gradients (RMSProp: `v` tracks s²) steps `scale_before / scale_after` times too
/// short after the shift until `v` has forgotten the old scale: about
/// `ln((scale_before / scale_after)²) / (1 - rho)` steps.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{Objective, ScaleShift};
/// let f = ScaleShift::default();
/// assert_eq!(f.gradient_at(&[1.0, -1.0], 0), vec![100.0, -100.0]);
/// assert_eq!(f.gradient_at(&[1.0, -1.0], 100), vec![-1.0, -1.0]);
/// assert_eq!(f.value_at(&f.minimum_at(150), 150), 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct ScaleShift {
    /// The gradient's size before the shift.
    pub scale_before: f64,
    /// The gradient's size after it.
    pub scale_after: f64,
    /// The step at which the scale and the minimum change.
    pub shift_at: u64,
    /// The minimum before the shift.
    pub before: [f64; 2],
    /// The minimum after it.
    pub after: [f64; 2],
}

impl Default for ScaleShift {
    fn default() -> Self {
        Self {
            scale_before: 100.0,
            scale_after: 1.0,
            shift_at: 100,
            before: [0.0, 0.0],
            after: [2.0, 1.5],
        }
    }
}

impl ScaleShift {
    fn scale_at(&self, step: u64) -> f64 {
        if step < self.shift_at {
            self.scale_before
        } else {
            self.scale_after
        }
    }
}

impl Objective for ScaleShift {
    fn name(&self) -> &'static str {
        "scale_shift"
    }
    fn dim(&self) -> usize {
        2
    }
    fn value(&self, x: &[f64]) -> f64 {
        self.value_at(x, 0)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        self.gradient_at(x, 0)
    }
    fn gradient_at(&self, x: &[f64], step: u64) -> Vec<f64> {
        let (c, s) = (self.minimum_at(step), self.scale_at(step));
        x.iter()
            .zip(&c)
            .map(|(a, b)| {
                let d = a - b;
                if d > 0.0 {
                    s
                } else if d < 0.0 {
                    -s
                } else {
                    0.0
                }
            })
            .collect()
    }
    fn value_at(&self, x: &[f64], step: u64) -> f64 {
        let (c, s) = (self.minimum_at(step), self.scale_at(step));
        s * x.iter().zip(&c).map(|(a, b)| (a - b).abs()).sum::<f64>()
    }
    fn minimum(&self) -> Vec<f64> {
        self.minimum_at(0)
    }
    fn minimum_at(&self, step: u64) -> Vec<f64> {
        if step < self.shift_at {
            self.before.to_vec()
        } else {
            self.after.to_vec()
        }
    }
    fn moving(&self) -> bool {
        true
    }
    fn start(&self) -> Vec<f64> {
        // Off the lattice of round steps, so no learning rate lands on a minimum by luck.
        vec![-0.93, 1.17]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-1.5, 3.0), (-1.0, 2.5)]
    }
}

/// Linear regression on a seeded synthetic data set: f(w) = |Xw - y|² / (2n), rows of X drawn
/// from N(0, 1) with feature j scaled by a factor log-spaced from 1 to `max_scale` (unnormalized
/// features), y = X w_true + N(0, `noise`²).
///
/// With `batch < n` (see [`LeastSquares::with_batch`]) step k's gradient is the mean over one
/// mini-batch: epoch ⌊k / b⌋ (b = ⌈n / batch⌉ batches per epoch) shuffles the rows with its own
/// seeded permutation and walks through them. Values and the minimum are the full-batch ones, so
/// full-batch GD, SGD (batch 1), mini-batch GD and RMSProp compare on equal epochs.
///
/// # Examples
/// ```
/// use rmsprop_testfns::{LeastSquares, Objective};
/// let f = LeastSquares::default();
/// let w = f.minimum();
/// assert!(f.gradient(&w).iter().all(|g| g.abs() < 1e-9)); // the normal equations' solution
/// let sgd = LeastSquares::default().with_batch(1, 0);
/// assert_eq!(sgd.steps_per_epoch(), 1000);
/// ```
#[derive(Debug)]
pub struct LeastSquares {
    n: usize,
    d: usize,
    rows: Vec<f64>,
    targets: Vec<f64>,
    w_star: Vec<f64>,
    batch: usize,
    seed: u64,
    order: Mutex<Option<(u64, Vec<usize>)>>,
}

impl Default for LeastSquares {
    fn default() -> Self {
        Self::new(Self::DEFAULT_SAMPLES, 10, 10.0, 0.5, 0)
    }
}

impl LeastSquares {
    /// Samples in the default data set.
    pub const DEFAULT_SAMPLES: usize = 1000;

    /// Steps per epoch for `n` samples in batches of `batch` (clamped to 1..=n), without
    /// building a data set.
    ///
    /// # Examples
    /// ```
    /// use rmsprop_testfns::LeastSquares;
    /// assert_eq!(LeastSquares::steps_per_epoch_for(1000, 32), 32);
    /// assert_eq!(LeastSquares::steps_per_epoch_for(1000, usize::MAX), 1);
    /// ```
    pub fn steps_per_epoch_for(n: usize, batch: usize) -> u64 {
        n.div_ceil(batch.clamp(1, n.max(1))) as u64
    }

    /// `n` samples of `d` features (scales 1..`max_scale`), label noise `noise`, data seed
    /// `data_seed`; full batch.
    ///
    /// # Panics
    /// When `n` or `d` is 0.
    pub fn new(n: usize, d: usize, max_scale: f64, noise: f64, data_seed: u64) -> Self {
        assert!(n > 0 && d > 0, "least squares needs samples and features");
        let mut r = rng(data_seed, u64::MAX);
        let scales: Vec<f64> = (0..d)
            .map(|j| max_scale.powf(j as f64 / (d.max(2) - 1) as f64))
            .collect();
        let w_true: Vec<f64> = (0..d).map(|_| StandardNormal.sample(&mut r)).collect();
        let mut rows = Vec::with_capacity(n * d);
        let mut targets = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = scales
                .iter()
                .map(|s| {
                    let z: f64 = StandardNormal.sample(&mut r);
                    s * z
                })
                .collect();
            let e: f64 = StandardNormal.sample(&mut r);
            targets.push(row.iter().zip(&w_true).map(|(a, b)| a * b).sum::<f64>() + noise * e);
            rows.extend(row);
        }
        let w_star = solve_normal_equations(&rows, &targets, n, d);
        Self {
            n,
            d,
            rows,
            targets,
            w_star,
            batch: n,
            seed: 0,
            order: Mutex::new(None),
        }
    }

    /// Mini-batches of `batch` rows (clamped to 1..=n) in an order seeded by `seed`.
    pub fn with_batch(mut self, batch: usize, seed: u64) -> Self {
        self.batch = batch.clamp(1, self.n);
        self.seed = seed;
        self
    }

    /// Rows per mini-batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Optimizer steps per pass over the data.
    pub fn steps_per_epoch(&self) -> u64 {
        Self::steps_per_epoch_for(self.n, self.batch)
    }

    fn residual(&self, i: usize, w: &[f64]) -> f64 {
        let row = &self.rows[i * self.d..(i + 1) * self.d];
        row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - self.targets[i]
    }

    fn mean_gradient(&self, w: &[f64], rows: impl Iterator<Item = usize>) -> Vec<f64> {
        let mut g = vec![0.0; self.d];
        let mut count = 0usize;
        for i in rows {
            let r = self.residual(i, w);
            for (gj, a) in g.iter_mut().zip(&self.rows[i * self.d..(i + 1) * self.d]) {
                *gj += r * a;
            }
            count += 1;
        }
        g.iter().map(|v| v / count as f64).collect()
    }
}

/// Solves XᵀX w = Xᵀy by Cholesky (d is small).
fn solve_normal_equations(rows: &[f64], y: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d];
    for i in 0..n {
        let row = &rows[i * d..(i + 1) * d];
        for j in 0..d {
            b[j] += row[j] * y[i];
            for k in 0..d {
                a[j * d + k] += row[j] * row[k];
            }
        }
    }
    let mut l = vec![0.0; d * d];
    for j in 0..d {
        for k in 0..=j {
            let s: f64 = (0..k).map(|m| l[j * d + m] * l[k * d + m]).sum();
            l[j * d + k] = if j == k {
                (a[j * d + j] - s).sqrt()
            } else {
                (a[j * d + k] - s) / l[k * d + k]
            };
        }
    }
    let mut z = vec![0.0; d];
    for j in 0..d {
        let s: f64 = (0..j).map(|m| l[j * d + m] * z[m]).sum();
        z[j] = (b[j] - s) / l[j * d + j];
    }
    let mut w = vec![0.0; d];
    for j in (0..d).rev() {
        let s: f64 = (j + 1..d).map(|m| l[m * d + j] * w[m]).sum();
        w[j] = (z[j] - s) / l[j * d + j];
    }
    w
}

impl Objective for LeastSquares {
    fn name(&self) -> &'static str {
        "least_squares"
    }
    fn dim(&self) -> usize {
        self.d
    }
    fn value(&self, x: &[f64]) -> f64 {
        (0..self.n)
            .map(|i| self.residual(i, x).powi(2))
            .sum::<f64>()
            / (2.0 * self.n as f64)
    }
    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        self.mean_gradient(x, 0..self.n)
    }
    fn gradient_at(&self, x: &[f64], step: u64) -> Vec<f64> {
        if self.batch == self.n {
            return self.gradient(x);
        }
        let per_epoch = self.steps_per_epoch();
        let (epoch, k) = (step / per_epoch, (step % per_epoch) as usize);
        let mut cache = self.order.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(cache.as_ref(), Some((e, _)) if *e == epoch) {
            let mut order: Vec<usize> = (0..self.n).collect();
            order.shuffle(&mut rng(self.seed, epoch));
            *cache = Some((epoch, order));
        }
        let order = &cache.as_ref().expect("filled above").1;
        let end = ((k + 1) * self.batch).min(self.n);
        self.mean_gradient(x, order[k * self.batch..end].iter().copied())
    }
    fn minimum(&self) -> Vec<f64> {
        self.w_star.clone()
    }
    fn start(&self) -> Vec<f64> {
        vec![0.0; self.d]
    }
    fn bounds(&self) -> Vec<(f64, f64)> {
        vec![(-3.0, 3.0); self.d]
    }
}
