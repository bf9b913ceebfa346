//! Blockwise 8-bit quantization with bitsandbytes' dynamic maps (see [`crate::blockwise`]).

use std::sync::OnceLock;

/// Elements per block: one `absmax` per block (bitsandbytes' CPU block size).
pub const BLOCK: usize = 256;

/// Bins of `[-1, 1]` in the quantization lookup table.
const LUT_SIZE: usize = 65536;

/// A dynamic quantization map (256 sorted values in `[-1, 1]`) and the lookup table that
/// quantizes to it.
///
/// # Examples
/// ```
/// use rmsprop::blockwise::QuantMap;
/// let s = QuantMap::signed().code();
/// assert_eq!((s[127], s[255]), (0.0, 1.0));
/// assert!(s[0] < -0.99 && s[0] > -1.0);
/// let u = QuantMap::unsigned().code();
/// assert_eq!((u[0], u[255]), (0.0, 1.0));
/// assert!(s.windows(2).all(|w| w[0] <= w[1]));
/// ```
#[derive(Clone)]
pub struct QuantMap {
    code: [f32; 256],
    lut: Box<[u8; LUT_SIZE]>,
}

impl core::fmt::Debug for QuantMap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QuantMap")
            .field("code", &self.code)
            .finish_non_exhaustive()
    }
}

/// `torch.linspace(start, end, n, dtype=float32)` as torch computes it on CPUs with AVX2 or
/// AVX-512: the first half `fma(step, i, start)`, the second `fma(-step, n-1-i, end)`.
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((n - 1 - i) as f32, end)
            }
        })
        .collect()
}

impl QuantMap {
    /// bitsandbytes' `create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)`: for each
    /// exponent `e` of 7, the means of `2^e + 1` (signed; `2^(e+1) + 1` unsigned) points evenly
    /// spaced over `[0.1, 1]`, scaled by `10^(e-6)` (and negated, signed), with 0 and 1; sorted.
    /// Computed in `f32` as torch computes it on AVX2 and AVX-512 machines (its `linspace`
    /// fuses the multiply-add there; on a CPU without vectors torch builds a map that differs
    /// in a few last bits).
    pub fn dynamic(signed: bool) -> Self {
        let mut data: Vec<f32> = Vec::with_capacity(256);
        for e in 0..7 {
            let items = if signed {
                (1 << e) + 1
            } else {
                (1 << (e + 1)) + 1
            };
            let bounds = linspace_f32(0.1, 1.0, items);
            let scale = 10f64.powi(e - 6) as f32;
            for w in bounds.windows(2) {
                let mean = (w[0] + w[1]) / 2.0;
                data.push(mean * scale);
                if signed {
                    data.push(mean * -scale);
                }
            }
        }
        data.push(0.0);
        data.push(1.0);
        data.resize(256, 0.0);
        data.sort_by(f32::total_cmp);
        let mut code = [0.0f32; 256];
        code.copy_from_slice(&data);
        Self::from_code(code)
    }

    /// A map with these 256 sorted values, and its lookup table (bitsandbytes'
    /// `build_quantize_lut`: bin `i` of `[-1, 1]` gets the first code whose midpoint with the
    /// next is not below the bin's value).
    ///
    /// # Panics
    /// If the values are not sorted or not all in `[-1, 1]`.
    pub fn from_code(code: [f32; 256]) -> Self {
        assert!(
            code.windows(2).all(|w| w[0] <= w[1]) && code.iter().all(|c| c.abs() <= 1.0),
            "a quantization map is 256 sorted values in [-1, 1]"
        );
        let mid: Vec<f32> = code.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
        let mut lut: Box<[u8; LUT_SIZE]> = vec![0u8; LUT_SIZE]
            .into_boxed_slice()
            .try_into()
            .expect("LUT_SIZE bytes");
        let mut k = 0;
        for (i, slot) in lut.iter_mut().enumerate() {
            let val = -1.0 + (2.0 * i as f32) / (LUT_SIZE - 1) as f32;
            while k < 255 && mid[k] < val {
                k += 1;
            }
            *slot = k as u8;
        }
        Self { code, lut }
    }

    /// The signed dynamic map (bitsandbytes' `"dynamic"`: every first state).
    pub fn signed() -> &'static Self {
        static MAP: OnceLock<QuantMap> = OnceLock::new();
        MAP.get_or_init(|| Self::dynamic(true))
    }

    /// The unsigned dynamic map (bitsandbytes' `"udynamic"`: Adam's second moment).
    pub fn unsigned() -> &'static Self {
        static MAP: OnceLock<QuantMap> = OnceLock::new();
        MAP.get_or_init(|| Self::dynamic(false))
    }

    /// The 256 values.
    pub fn code(&self) -> &[f32; 256] {
        &self.code
    }

    /// Quantizes `x` block by block: `absmax[b]` the largest magnitude of block `b` and
    /// `codes[i]` the code of `x[i] * (1 / absmax)`; a block of zeros gets absmax 0 and codes 0.
    ///
    /// # Panics
    /// If `codes` is not as long as `x` or `absmax` does not have one value per block.
    pub fn quantize(&self, x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
        assert_eq!(codes.len(), x.len(), "one code per value");
        assert_eq!(
            absmax.len(),
            x.len().div_ceil(BLOCK),
            "one absmax per block"
        );
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2(map: &QuantMap, x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
                map.quantize_blocks(x, codes, absmax)
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { avx2(self, x, codes, absmax) };
            }
        }
        self.quantize_blocks(x, codes, absmax)
    }

    #[inline(always)]
    fn quantize_blocks(&self, x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
        let mut bins = [0u16; BLOCK];
        for ((block, out), m) in x
            .chunks(BLOCK)
            .zip(codes.chunks_mut(BLOCK))
            .zip(absmax.iter_mut())
        {
            // The largest magnitude, compared as bits (the same order for finite and infinite
            // values; a branch-free integer maximum vectorizes).
            let top = f32::from_bits(
                block
                    .iter()
                    .fold(0u32, |a, v| a.max(v.to_bits() & 0x7fff_ffff)),
            );
            *m = top;
            if top == 0.0 {
                out.fill(0);
                continue;
            }
            let inv = 1.0 / top;
            // The bin of each normalized value (a vectorized pass), then the table lookups.
            // (v + 1) * 0.5 is exact; a fused last step would give the same integer part.
            let bins = &mut bins[..block.len()];
            for (b, v) in bins.iter_mut().zip(block) {
                // max/min rather than clamp: a NaN (a state that overflowed under
                // NonFinitePolicy::Propagate) becomes -1, so the conversion below is always in
                // range.
                #[allow(clippy::manual_clamp)]
                let normed = (v * inv).max(-1.0).min(1.0);
                let bin = (normed + 1.0) * 0.5 * (LUT_SIZE - 1) as f32 + 0.5;
                // SAFETY: `bin` is finite and in [0.5, 65535.5], so it fits an i32.
                *b = unsafe { bin.to_int_unchecked::<i32>() } as u16;
            }
            for (c, b) in out.iter_mut().zip(bins.iter()) {
                *c = self.lut[*b as usize];
            }
        }
    }

    /// Dequantizes: `out[i] = map[codes[i]] * absmax[i / BLOCK]`.
    ///
    /// # Panics
    /// If the lengths do not agree as in [`quantize`](QuantMap::quantize).
    pub fn dequantize(&self, codes: &[u8], absmax: &[f32], out: &mut [f32]) {
        assert_eq!(codes.len(), out.len(), "one code per value");
        assert_eq!(
            absmax.len(),
            out.len().div_ceil(BLOCK),
            "one absmax per block"
        );
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2")]
            fn avx2(map: &QuantMap, codes: &[u8], absmax: &[f32], out: &mut [f32]) {
                map.dequantize_blocks(codes, absmax, out)
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { avx2(self, codes, absmax, out) };
            }
        }
        self.dequantize_blocks(codes, absmax, out)
    }

    #[inline(always)]
    fn dequantize_blocks(&self, codes: &[u8], absmax: &[f32], out: &mut [f32]) {
        for ((block, out), m) in codes
            .chunks(BLOCK)
            .zip(out.chunks_mut(BLOCK))
            .zip(absmax.iter())
        {
            for (o, c) in out.iter_mut().zip(block) {
                *o = self.code[*c as usize] * m;
            }
        }
    }
}

/// The map a state buffer is quantized with, by its name, as bitsandbytes chooses: second
/// moments of Adam (`exp_avg_sq`, `max_exp_avg_sq`) on the unsigned map, every other buffer
/// (RMSProp's `square_avg` and Adagrad's `sum` included) on the signed one.
///
/// # Examples
/// ```
/// use rmsprop::blockwise::{map_for, QuantMap};
/// assert!(std::ptr::eq(map_for("exp_avg_sq"), QuantMap::unsigned()));
/// assert!(std::ptr::eq(map_for("square_avg"), QuantMap::signed()));
/// ```
pub fn map_for(buffer: &str) -> &'static QuantMap {
    match buffer {
        "exp_avg_sq" | "max_exp_avg_sq" => QuantMap::unsigned(),
        _ => QuantMap::signed(),
    }
}
