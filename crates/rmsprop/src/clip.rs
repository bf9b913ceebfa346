//! Gradient clipping: by value, by norm per tensor, and by global norm over all tensors.

use crate::Float;

/// Clamps every gradient element into `[-limit, limit]` (PyTorch `clip_grad_value_`).
/// NaN stays NaN.
///
/// # Examples
/// ```
/// let (mut a, mut b) = (vec![-3.0f32, 0.5], vec![2.0f32]);
/// rmsprop::clip::clip_by_value(&mut [&mut a, &mut b], 1.0);
/// assert_eq!((a, b), (vec![-1.0, 0.5], vec![1.0]));
/// ```
pub fn clip_by_value<T: Float>(grads: &mut [&mut [T]], limit: f64) {
    let (hi, lo) = (T::from_f64(limit), T::from_f64(-limit));
    for g in grads.iter_mut() {
        for x in g.iter_mut() {
            if *x > hi {
                *x = hi;
            } else if *x < lo {
                *x = lo;
            }
        }
    }
}

/// The `norm_type`-norm of one tensor, accumulated in `f64` (`f64::INFINITY`: the largest
/// magnitude). NaN if an element is NaN.
///
/// # Examples
/// ```
/// assert_eq!(rmsprop::clip::norm(&[3.0f32, -4.0], 2.0), 5.0);
/// assert_eq!(rmsprop::clip::norm(&[3.0f64, -4.0], f64::INFINITY), 4.0);
/// ```
pub fn norm<T: Float>(g: &[T], norm_type: f64) -> f64 {
    if norm_type == f64::INFINITY {
        return g.iter().map(|x| x.to_f64().abs()).fold(0.0, |m, x| {
            if x.is_nan() || m.is_nan() {
                f64::NAN
            } else {
                m.max(x)
            }
        });
    }
    if norm_type == 2.0 {
        return g
            .iter()
            .map(|x| x.to_f64() * x.to_f64())
            .sum::<f64>()
            .sqrt();
    }
    g.iter()
        .map(|x| x.to_f64().abs().powf(norm_type))
        .sum::<f64>()
        .powf(1.0 / norm_type)
}

fn scale<T: Float>(g: &mut [T], coef: f64) {
    let c = T::from_f64(coef);
    for x in g.iter_mut() {
        *x = *x * c;
    }
}

/// The clip coefficient of PyTorch: `max_norm / (norm + 1e-6)`, capped at 1.
fn clip_coef(max_norm: f64, norm: f64) -> f64 {
    (max_norm / (norm + 1e-6)).min(1.0)
}

/// Rescales each tensor whose norm exceeds `max_norm` to that norm (separately per tensor).
/// Returns each tensor's norm before clipping.
///
/// # Examples
/// ```
/// let (mut a, mut b) = (vec![3.0f64, 4.0], vec![0.1f64]);
/// let norms = rmsprop::clip::clip_by_norm_per_tensor(&mut [&mut a, &mut b], 1.0, 2.0);
/// assert_eq!(norms, vec![5.0, 0.1]);
/// assert!((rmsprop::clip::norm(&a, 2.0) - 1.0).abs() < 1e-6);
/// assert_eq!(b, vec![0.1]);
/// ```
pub fn clip_by_norm_per_tensor<T: Float>(
    grads: &mut [&mut [T]],
    max_norm: f64,
    norm_type: f64,
) -> Vec<f64> {
    grads
        .iter_mut()
        .map(|g| {
            let n = norm(g, norm_type);
            let c = clip_coef(max_norm, n);
            if c < 1.0 {
                scale(g, c);
            }
            n
        })
        .collect()
}

/// Clips by the global norm over all tensors, as `torch.nn.utils.clip_grad_norm_`: the total
/// norm is the norm of the per-tensor norms; if it exceeds `max_norm`, every gradient is
/// multiplied by `max_norm / (total + 1e-6)`. Returns the total norm before clipping (NaN or
/// infinite when a gradient is, and then nothing is scaled).
///
/// # Examples
/// ```
/// let (mut a, mut b) = (vec![3.0f32], vec![4.0f32]);
/// let total = rmsprop::clip::clip_grad_norm(&mut [&mut a, &mut b], 1.0, 2.0);
/// assert_eq!(total, 5.0);
/// assert!((a[0] - 0.6).abs() < 1e-6 && (b[0] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm<T: Float>(grads: &mut [&mut [T]], max_norm: f64, norm_type: f64) -> f64 {
    let norms: Vec<f64> = grads.iter().map(|g| norm(g, norm_type)).collect();
    let total = norm(&norms, norm_type);
    if total.is_finite() {
        let c = clip_coef(max_norm, total);
        if c < 1.0 {
            for g in grads.iter_mut() {
                scale(g, c);
            }
        }
    }
    total
}
