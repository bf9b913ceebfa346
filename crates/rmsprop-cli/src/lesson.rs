//! The classic example: RMSProp on f(x, y) = x^2 + y^2 from (5, 4), as the lesson printed it.

use rmsprop::{Optimizer, RmsProp, RmsPropConfig};

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
    let mut opt = RmsProp::<f64>::new(RmsPropConfig::lesson()).expect("the lesson preset is valid");
    let mut x = [5.0, 4.0];
    (0..=EPOCHS)
        .map(|_| {
            let grad = [2.0 * x[0], 2.0 * x[1]];
            opt.step_single(&mut x, &grad)
                .expect("two parameters, two gradients");
            x
        })
        .collect()
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
