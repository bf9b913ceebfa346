//! numpy's default array printing (`print(np.array([...]))` for float64), for the classic example.
//!
//! numpy (`np.set_printoptions` defaults: precision 8, `floatmode='maxprec'`,
//! `suppress=False`) prints every value with the fewest digits that identify it,
//! at most 8 after the point, switching the whole array to scientific notation
//! when the largest magnitude is >= 1e8, the smallest non-zero one is < 1e-4, or
//! their ratio exceeds 1e3. Values are padded to a common width. Line wrapping
//! (numpy's 75-character limit) is not reproduced: short arrays only.

const PRECISION: usize = 8;

/// Formats `xs` as numpy prints a float64 array, e.g. `[2.3688824  1.47561697]`.
///
/// # Examples
/// ```
/// use rmsprop_cli::numpy_fmt::format_array;
/// assert_eq!(format_array(&[2.3688824, 1.47561697]), "[2.3688824  1.47561697]");
/// assert_eq!(format_array(&[-3.07701828e-17, 2.18862195e-20]), "[-3.07701828e-17  2.18862195e-20]");
/// assert_eq!(format_array(&[5.0, 4.0]), "[5. 4.]");
/// ```
pub fn format_array(xs: &[f64]) -> String {
    let nonzero: Vec<f64> = xs
        .iter()
        .filter(|x| x.is_finite() && **x != 0.0)
        .map(|x| x.abs())
        .collect();
    let scientific = if nonzero.is_empty() {
        false
    } else {
        let max = nonzero.iter().cloned().fold(f64::MIN, f64::max);
        let min = nonzero.iter().cloned().fold(f64::MAX, f64::min);
        max >= 1e8 || min < 1e-4 || max / min > 1e3
    };
    let cells = if scientific {
        format_scientific(xs)
    } else {
        format_positional(xs)
    };
    format!("[{}]", cells.join(" "))
}

/// `{:.8}` with trailing zeros removed (the point is kept: `5.`).
fn positional_digits(x: f64) -> String {
    let s = format!("{:.*}", PRECISION, x);
    let s = s.trim_end_matches('0');
    s.to_string()
}

fn format_positional(xs: &[f64]) -> Vec<String> {
    let strs: Vec<Option<(String, String)>> = xs
        .iter()
        .map(|&x| {
            x.is_finite().then(|| {
                let s = positional_digits(x);
                let (int, frac) = s.split_once('.').expect("a point");
                (int.to_string(), frac.to_string())
            })
        })
        .collect();
    let pad_left = strs
        .iter()
        .flatten()
        .map(|(i, _)| i.len())
        .max()
        .unwrap_or(0);
    let pad_right = strs
        .iter()
        .flatten()
        .map(|(_, f)| f.len())
        .max()
        .unwrap_or(0);
    xs.iter()
        .zip(&strs)
        .map(|(&x, s)| match s {
            Some((int, frac)) => format!("{int:>pad_left$}.{frac:<pad_right$}"),
            None => special(x, pad_left + pad_right + 1),
        })
        .collect()
}

/// Mantissa digits (trailing zeros removed) and decimal exponent of `x`, at most 8 fraction digits.
fn scientific_digits(x: f64) -> (String, i32) {
    let s = format!("{:.*e}", PRECISION, x);
    let (mantissa, exp) = s.split_once('e').expect("an exponent");
    let mantissa = mantissa.trim_end_matches('0').to_string();
    (mantissa, exp.parse().expect("an integer exponent"))
}

fn format_scientific(xs: &[f64]) -> Vec<String> {
    let strs: Vec<Option<(String, i32)>> = xs
        .iter()
        .map(|&x| x.is_finite().then(|| scientific_digits(x)))
        .collect();
    let split = |m: &String| -> (String, String) {
        let (i, f) = m.split_once('.').expect("a point");
        (i.to_string(), f.to_string())
    };
    let precision = strs
        .iter()
        .flatten()
        .map(|(m, _)| split(m).1.len())
        .max()
        .unwrap_or(0);
    let pad_left = strs
        .iter()
        .flatten()
        .map(|(m, _)| split(m).0.len())
        .max()
        .unwrap_or(0);
    let exp_size = strs
        .iter()
        .flatten()
        .map(|(_, e)| e.unsigned_abs().to_string().len().max(2))
        .max()
        .unwrap_or(2);
    let width = pad_left + 1 + precision + 2 + exp_size;
    xs.iter()
        .zip(&strs)
        .map(|(&x, s)| match s {
            Some((m, e)) => {
                let (int, frac) = split(m);
                let sign = if *e < 0 { '-' } else { '+' };
                let digits = e.unsigned_abs();
                format!("{int:>pad_left$}.{frac:0<precision$}e{sign}{digits:0>exp_size$}")
            }
            None => special(x, width),
        })
        .collect()
}

fn special(x: f64, width: usize) -> String {
    let s = if x.is_nan() {
        "nan"
    } else if x > 0.0 {
        "inf"
    } else {
        "-inf"
    };
    format!("{s:>width$}")
}

#[cfg(test)]
mod tests {
    use super::format_array;

    #[test]
    fn positional_pads_fractions_to_a_common_width() {
        assert_eq!(
            format_array(&[4.68377233398313, 3.683772358983113]),
            "[4.68377233 3.68377236]"
        );
        assert_eq!(format_array(&[0.1, 0.25]), "[0.1  0.25]");
        assert_eq!(format_array(&[-1.5, 10.0]), "[-1.5 10. ]");
        assert_eq!(format_array(&[0.0, 0.0]), "[0. 0.]");
    }

    #[test]
    fn scientific_when_magnitudes_are_far_apart_or_tiny() {
        assert_eq!(
            format_array(&[3.91649374e-04, 3.12725069e-09]),
            "[3.91649374e-04 3.12725069e-09]"
        );
        assert_eq!(format_array(&[1e-5, 2e-5]), "[1.e-05 2.e-05]");
        assert_eq!(format_array(&[1.5e10, 1.0]), "[1.5e+10 1.0e+00]");
        assert_eq!(format_array(&[1e-120, -1.0]), "[ 1.e-120 -1.e+000]");
    }

    #[test]
    fn non_finite_values_are_right_aligned() {
        assert_eq!(format_array(&[f64::NAN, 1.25]), "[ nan 1.25]");
        assert_eq!(format_array(&[f64::NEG_INFINITY, 1.25]), "[-inf 1.25]");
    }
}
