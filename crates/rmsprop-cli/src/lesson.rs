//! The classic example: RMSProp on f(x, y) = x^2 + y^2 from (5, 4), as the lesson printed it.

use rmsprop::{RmsProp, RmsPropConfig};
use rmsprop_testfns::Sphere;

use crate::runner::{Control, Observe, Runner, StepView};

use crate::numpy_fmt::format_array;

/// Epochs run by the classic example: `0..=EPOCHS`.
pub const EPOCHS: usize = 100;
/// Every how many epochs the state is printed.
pub const PRINT_EVERY: usize = 20;

/// Runs the lesson (lr 0.1, rho 0.9, eps 1e-6 outside the root, square average from 0) and
/// returns the state after each epoch `0..=100`.
///
/// # Examples
/// ```
/// let states = rmsprop_cli::lesson::run();
/// assert_eq!(states.len(), 101);
/// assert_eq!(states[100], [-3.0770182845888756e-17, 2.1886219485527558e-20]);
/// ```
pub fn run() -> Vec<[f64; 2]> {
    steps(EPOCHS + 1).into_iter().map(|(_, x)| x).collect()
}

/// The lines the lesson printed: `Epoch N, current state: [x y]` every 20th epoch, numpy formatting.
///
/// # Examples
/// ```
/// let lines = rmsprop_cli::lesson::lines();
/// assert_eq!(lines[0], "Epoch 0, current state: [4.68377233 3.68377236]");
/// ```
pub fn lines() -> Vec<String> {
    run()
        .iter()
        .enumerate()
        .filter(|(epoch, _)| epoch % PRINT_EVERY == 0)
        .map(|(epoch, x)| format!("Epoch {epoch}, current state: {}", format_array(x)))
        .collect()
}

/// One epoch of the classic example, step by step.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// The epoch (0 = the first step).
    pub epoch: usize,
    /// The point the gradient was taken at.
    pub x: [f64; 2],
    /// The gradient there, `2 x`.
    pub grad: [f64; 2],
    /// The squared-gradient average after this step: `rho v + (1 - rho) g^2`.
    pub square_avg: [f64; 2],
    /// The denominator `sqrt(v) + eps`.
    pub denominator: [f64; 2],
    /// The step taken, `lr g / (sqrt(v) + eps)`, so that the next point is `x - step`.
    pub step: [f64; 2],
}

/// The classic example's first `epochs` steps in full: what `rmsprop lesson --trace` prints.
/// The square averages are the library's own state, not recomputed.
///
/// # Examples
/// ```
/// let rows = rmsprop_cli::lesson::trace(2);
/// // v after the first step: (1 - 0.9) * 10^2 and (1 - 0.9) * 8^2
/// assert!((rows[0].square_avg[0] - 10.0).abs() < 1e-12 && (rows[0].square_avg[1] - 6.4).abs() < 1e-12);
/// // the next point is x - step
/// assert_eq!(rows[1].x[0], rows[0].x[0] - rows[0].step[0]);
/// ```
pub fn trace(epochs: usize) -> Vec<TraceRow> {
    steps(epochs).into_iter().map(|(row, _)| row).collect()
}

/// The lesson's first `epochs` steps: each step's row and the point it leads to.
fn steps(epochs: usize) -> Vec<(TraceRow, [f64; 2])> {
    let config = RmsPropConfig::lesson();
    let mut opt = RmsProp::<f64>::new(config.clone()).expect("the lesson preset is valid");
    // The lesson's gradient, 2x, is the sphere's.
    let mut x = vec![5.0, 4.0];
    let mut rows = Rows {
        eps: config.eps,
        rows: Vec::new(),
    };
    Runner::new(&Sphere)
        .observe(&mut rows)
        .run(&mut opt, &mut x, 0, epochs as u64)
        .expect("two parameters, two gradients");
    rows.rows
}

/// Records the lesson's steps (an observer of the [`Runner`]).
struct Rows {
    eps: f64,
    rows: Vec<(TraceRow, [f64; 2])>,
}

impl Observe for Rows {
    fn iter(&mut self, s: &StepView<'_>) -> anyhow::Result<Control> {
        let v = s
            .optimizer
            .state_buffers(0)
            .into_iter()
            .find(|(name, _)| *name == "square_avg")
            .map(|(_, v)| [v[0], v[1]])
            .expect("a step was taken");
        let (at, x) = ([s.before[0], s.before[1]], [s.x[0], s.x[1]]);
        let row = TraceRow {
            epoch: s.step as usize - 1,
            x: at,
            grad: [s.gradient[0], s.gradient[1]],
            square_avg: v,
            denominator: [v[0].sqrt() + self.eps, v[1].sqrt() + self.eps],
            step: [at[0] - x[0], at[1] - x[1]],
        };
        self.rows.push((row, x));
        Ok(Control::Continue)
    }
}

/// [`trace`] as a text table.
///
/// # Examples
/// ```
/// let t = rmsprop_cli::lesson::trace_table(3);
/// assert_eq!(t.lines().count(), 2 + 3 * 2);
/// ```
pub fn trace_table(epochs: usize) -> String {
    let mut out = String::from(
        "lr 0.1, rho 0.9, eps 1e-6: v = rho v + (1 - rho) g^2, x <- x - lr g / (sqrt(v) + eps)\n\
         epoch  coord   x             g = 2x        v             sqrt(v) + eps  step\n",
    );
    for r in trace(epochs) {
        for (i, name) in ["x", "y"].iter().enumerate() {
            let epoch = if i == 0 {
                r.epoch.to_string()
            } else {
                String::new()
            };
            out += &format!(
                "{epoch:<6} {name:<7} {:<13.8} {:<13.8} {:<13.8} {:<14.8} {:.8}\n",
                r.x[i], r.grad[i], r.square_avg[i], r.denominator[i], r.step[i]
            );
        }
    }
    out
}
