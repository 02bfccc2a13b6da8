//! Hot numeric helpers the inference engine needs on every batch: feature normalization,
//! int8 and fp16 quantization, and checksums of weight and tensor bytes.
//!
//! Each routine is a single pass over contiguous memory written so that LLVM vectorizes it
//! (fixed-length chunks, no bounds checks in the inner loop, no branches but min/max). The
//! fp16 conversions use `half`'s slice routines, which pick F16C instructions at run time, and
//! the checksum is CRC-32C, which `crc32c` computes with the SSE4.2 / ARMv8 CRC instructions.

use crate::error::{CoreError, CoreResult};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

pub mod py;

/// Elements per tile of the normalization pattern: the per-column mean and scale are tiled
/// to a whole number of rows at least this long, so the inner loop runs over equal-length
/// slices that vectorize, and the tile stays in L1.
const TILE_TARGET: usize = 256;

/// Define `fn $name` whose body is compiled twice: for AVX2 + FMA, used when the CPU has
/// them (std caches the check), and for the baseline the wheel targets. The body is inlined
/// into each copy, so each loop is vectorized for its own instruction set.
macro_rules! multiversion {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),*) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        fn $name($($a: $t),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($a: $t),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($a: $t),*) $(-> $ret)? {
                    body($($a),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the features were detected on this CPU just above.
                    return unsafe { wide($($a),*) };
                }
            }
            body($($a),*)
        }
    };
}

fn arg(msg: String) -> CoreError {
    CoreError::InvalidArgument(msg)
}

/// `dst[r, c] = clamp((src[r, c] - mean[c]) * inv_std[c], -clip, clip)` over a row-major
/// matrix with `mean.len()` columns. `clip` of `f32::INFINITY` disables clamping.
pub fn normalize(
    src: &[f32],
    dst: &mut [f32],
    mean: &[f32],
    inv_std: &[f32],
    clip: f32,
) -> CoreResult<()> {
    let cols = mean.len();
    if cols == 0 || inv_std.len() != cols {
        return Err(arg(format!(
            "normalize: mean has {} columns and inv_std {}; give both the same non-zero length",
            cols,
            inv_std.len()
        )));
    }
    if src.len() != dst.len() || src.len() % cols != 0 {
        return Err(arg(format!(
            "normalize: src holds {} values and dst {}; both must hold whole rows of {cols}",
            src.len(),
            dst.len()
        )));
    }
    if clip.is_nan() || clip <= 0.0 {
        return Err(arg(format!("normalize: clip must be > 0, got {clip}")));
    }
    let rows_per_tile = TILE_TARGET.div_ceil(cols);
    let tile = rows_per_tile * cols;
    let m: Vec<f32> = mean.iter().copied().cycle().take(tile).collect();
    let s: Vec<f32> = inv_std.iter().copied().cycle().take(tile).collect();
    let mut src_chunks = src.chunks_exact(tile);
    let mut dst_chunks = dst.chunks_exact_mut(tile);
    for (d, x) in (&mut dst_chunks).zip(&mut src_chunks) {
        norm_tile(x, d, &m, &s, clip);
    }
    let rest = src_chunks.remainder();
    let n = rest.len();
    norm_tile(rest, dst_chunks.into_remainder(), &m[..n], &s[..n], clip);
    Ok(())
}

multiversion! {
fn norm_tile(x: &[f32], d: &mut [f32], m: &[f32], s: &[f32], clip: f32) {
    let n = x.len().min(d.len()).min(m.len()).min(s.len());
    let (x, d, m, s) = (&x[..n], &mut d[..n], &m[..n], &s[..n]);
    for i in 0..n {
        d[i] = ((x[i] - m[i]) * s[i]).max(-clip).min(clip);
    }
}
}

/// Largest absolute value (0.0 for an empty slice; NaN when any value is NaN, so a
/// quantization of poisoned data fails loudly instead of silently saturating).
pub fn absmax(src: &[f32]) -> f32 {
    f32::from_bits(absmax_bits(src))
}

multiversion! {
/// For non-NaN floats the order of `bits & 0x7fff_ffff` as integers is the order of the
/// absolute values, and every NaN sorts above infinity: an integer max (which vectorizes
/// without NaN fix-ups) finds both the peak and any NaN.
fn absmax_bits(src: &[f32]) -> u32 {
    const ABS: u32 = 0x7fff_ffff;
    let mut acc = [0u32; 16];
    let mut chunks = src.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            acc[i] = acc[i].max(c[i].to_bits() & ABS);
        }
    }
    let mut peak = acc.iter().copied().max().unwrap_or(0);
    for &v in chunks.remainder() {
        peak = peak.max(v.to_bits() & ABS);
    }
    peak
}
}

/// Symmetric int8 quantization: `q = clamp(round_half_even(x / scale), -127, 127)`.
/// Values are rounded to nearest-even to match numpy's `rint`.
pub fn quantize_int8(src: &[f32], dst: &mut [i8], scale: f32) -> CoreResult<()> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(arg(format!(
            "quantize_int8: scale must be finite and > 0, got {scale}; an all-zero or \
             non-finite input has no int8 scale"
        )));
    }
    if src.len() != dst.len() {
        return Err(arg(format!(
            "quantize_int8: src holds {} values and dst {}; give equal lengths",
            src.len(),
            dst.len()
        )));
    }
    quant_loop(src, dst, 1.0 / scale);
    Ok(())
}

multiversion! {
// max/min rather than clamp: clamp's NaN handling would block the integer trick below
#[allow(clippy::manual_clamp)]
fn quant_loop(src: &[f32], dst: &mut [i8], inv: f32) {
    // Adding and subtracting 1.5 * 2^23 rounds any |v| < 2^22 to the nearest integer, ties
    // to even, in the default rounding mode; unlike `round_ties_even` (a libm call without
    // SSE4.1) it vectorizes. The integer then sits in the low mantissa bits of v + MAGIC, so
    // reading it back is integer arithmetic (a float-to-int `as` saturates and blocks
    // vectorization). NaN maps to -127 here; the Python facade refuses non-finite input.
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: i32 = 0x4B40_0000;
    for (d, &x) in dst.iter_mut().zip(src) {
        let v = (x * inv).max(-127.0).min(127.0);
        *d = ((v + MAGIC).to_bits() as i32).wrapping_sub(MAGIC_BITS) as i8;
    }
}
}

/// `dst = q * scale`.
pub fn dequantize_int8(src: &[i8], dst: &mut [f32], scale: f32) -> CoreResult<()> {
    if src.len() != dst.len() {
        return Err(arg(format!(
            "dequantize_int8: src holds {} values and dst {}; give equal lengths",
            src.len(),
            dst.len()
        )));
    }
    dequant_loop(src, dst, scale);
    Ok(())
}

multiversion! {
fn dequant_loop(src: &[i8], dst: &mut [f32], scale: f32) {
    for (d, &q) in dst.iter_mut().zip(src) {
        *d = f32::from(q) * scale;
    }
}
}

/// IEEE binary16 bits of each value, rounded to nearest-even (as numpy's `astype(float16)`).
pub fn f32_to_f16(src: &[f32], dst: &mut [u16]) -> CoreResult<()> {
    if src.len() != dst.len() {
        return Err(arg(format!(
            "to_fp16: src holds {} values and dst {}; give equal lengths",
            src.len(),
            dst.len()
        )));
    }
    let out: &mut [half::f16] = dst.reinterpret_cast_mut();
    out.convert_from_f32_slice(src);
    Ok(())
}

/// The f32 value of each IEEE binary16 bit pattern.
pub fn f16_to_f32(src: &[u16], dst: &mut [f32]) -> CoreResult<()> {
    if src.len() != dst.len() {
        return Err(arg(format!(
            "from_fp16: src holds {} values and dst {}; give equal lengths",
            src.len(),
            dst.len()
        )));
    }
    let bits: &[half::f16] = src.reinterpret_cast();
    bits.convert_to_f32_slice(dst);
    Ok(())
}

/// CRC-32C (Castagnoli) of `data`, continuing from `seed` (0 to start).
pub fn crc32c(data: &[u8], seed: u32) -> u32 {
    crc32c::crc32c_append(seed, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_matches_scalar_formula_across_tile_boundaries() {
        let cols = 12;
        let rows = 100; // 1200 values: several tiles of 264 plus a remainder
        let src: Vec<f32> = (0..rows * cols)
            .map(|i| (i as f32 * 0.37).sin() * 5.0)
            .collect();
        let mean: Vec<f32> = (0..cols).map(|c| c as f32 * 0.1).collect();
        let inv: Vec<f32> = (0..cols).map(|c| 1.0 + c as f32).collect();
        let mut dst = vec![0.0; src.len()];
        normalize(&src, &mut dst, &mean, &inv, 3.0).unwrap();
        for (i, (&x, &d)) in src.iter().zip(&dst).enumerate() {
            let c = i % cols;
            let want = ((x - mean[c]) * inv[c]).clamp(-3.0, 3.0);
            assert_eq!(d, want, "index {i}");
        }
    }

    #[test]
    fn normalize_rejects_ragged_rows_and_bad_clip() {
        let mut dst = vec![0.0; 5];
        assert!(normalize(&[0.0; 5], &mut dst, &[0.0; 2], &[1.0; 2], 1.0).is_err());
        let mut dst = vec![0.0; 4];
        assert!(normalize(&[0.0; 4], &mut dst, &[0.0; 2], &[1.0; 2], 0.0).is_err());
        assert!(normalize(&[0.0; 4], &mut dst, &[0.0; 2], &[1.0; 1], 1.0).is_err());
    }

    #[test]
    fn int8_round_trip_error_is_at_most_half_a_step() {
        let src: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.01).cos() * 2.5).collect();
        let scale = absmax(&src) / 127.0;
        let mut q = vec![0i8; src.len()];
        quantize_int8(&src, &mut q, scale).unwrap();
        let mut back = vec![0.0; src.len()];
        dequantize_int8(&q, &mut back, scale).unwrap();
        for (a, b) in src.iter().zip(&back) {
            assert!((a - b).abs() <= scale * 0.5 + 1e-6);
        }
        assert!(quantize_int8(&src, &mut q, 0.0).is_err());
    }

    #[test]
    fn absmax_reports_nan() {
        assert!(absmax(&[1.0, f32::NAN, 2.0]).is_nan());
        assert_eq!(absmax(&[1.0, -3.0, 2.0]), 3.0);
        assert_eq!(absmax(&[]), 0.0);
    }

    #[test]
    fn fp16_round_trip_is_exact_for_representable_values() {
        let src = [0.0f32, 1.0, -2.5, 65504.0, 0.000061035156];
        let mut bits = [0u16; 5];
        f32_to_f16(&src, &mut bits).unwrap();
        let mut back = [0.0f32; 5];
        f16_to_f32(&bits, &mut back).unwrap();
        assert_eq!(src, back);
    }

    #[test]
    fn crc32c_known_vector_and_streaming() {
        // RFC 3720 test vector: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32], 0), 0x8A91_36AA);
        let data = b"hello, system0";
        let whole = crc32c(data, 0);
        let parts = crc32c(&data[7..], crc32c(&data[..7], 0));
        assert_eq!(whole, parts);
    }
}
