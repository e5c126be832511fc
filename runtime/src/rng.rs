//! The on-device sampler: xoshiro128++ seeded through SplitMix64, uniform `f32`, and Gaussian
//! samples by Box-Muller, so the same seed gives the same latents, bit for bit, on the host and on
//! every microcontroller.
//!
//! Everything is f32 arithmetic in plain Rust (`libm::logf`, which is f32 inside, the
//! correctly rounded [`sqrt_f32`] and the polynomial [`sin_cos_turns`] here), so no target's
//! float library or f64 soft-float routines can change a result, and the sampler stays small on
//! an FPU-less core.
#![forbid(unsafe_code)]

/// xoshiro128++ 1.0 (Blackman and Vigna): 128 bits of state, 32-bit outputs, no multiplies.
///
/// [`Rng::seed_from_u64`] expands a `u64` with SplitMix64 as `rand_xoshiro`'s
/// `Xoshiro128PlusPlus::seed_from_u64` does, so both produce the same stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u32; 4],
    /// The second Box-Muller sample of the last pair, not yet returned.
    spare: Option<u32>,
}

const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(SPLITMIX_GAMMA);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// Seeds the state from a `u64` through SplitMix64 (two outputs, low half first).
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut state = seed;
        let a = splitmix64(&mut state);
        let b = splitmix64(&mut state);
        let s = [a as u32, (a >> 32) as u32, b as u32, (b >> 32) as u32];
        Self::from_state(s)
    }

    /// Uses `s` as the state directly. An all-zero state would only produce zeros, so it is
    /// replaced by the state `seed_from_u64(0)` gives.
    pub fn from_state(s: [u32; 4]) -> Self {
        // Word by word: an array comparison would bring `memcmp` into a firmware image.
        if s[0] | s[1] | s[2] | s[3] == 0 {
            return Self::seed_from_u64(0);
        }
        Rng { s, spare: None }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let [s0, s1, s2, s3] = self.s;
        let result = s0.wrapping_add(s3).rotate_left(7).wrapping_add(s0);
        let t = s1 << 9;
        let mut s = [s0, s1, s2 ^ s0, s3 ^ s1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        self.s = s;
        result
    }

    /// Uniform in `[0, 1)`: the top 24 bits scaled by `2^-24` (every value exactly representable).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample (mean 0, variance 1) by Box-Muller: from `u1` in `(0, 1]` and `u2`
    /// in `[0, 1)`, `r = sqrt(-2 ln u1)` and the pair `(r cos 2 pi u2, r sin 2 pi u2)`; the sine
    /// sample is kept and returned by the next call. The sine and cosine are [`sin_cos_turns`]
    /// of `u2` (the exact angle, not `2 pi u2` rounded to f32).
    pub fn next_gaussian(&mut self) -> f32 {
        if let Some(bits) = self.spare.take() {
            return f32::from_bits(bits);
        }
        let u1 = 1.0 - self.next_f32();
        let u2 = self.next_f32();
        let r = sqrt_f32(-2.0 * libm::logf(u1));
        let (sin, cos) = sin_cos_turns(u2);
        self.spare = Some((r * sin).to_bits());
        r * cos
    }

    /// Fills `out` with standard normal samples (the same values as repeated [`Rng::next_gaussian`]).
    pub fn fill_gaussian(&mut self, out: &mut [f32]) {
        for x in out {
            *x = self.next_gaussian();
        }
    }
}

/// The square root of `x`, correctly rounded (round to nearest, ties to even), for every
/// non-negative `x` including subnormals, zero and infinity; NaN for a negative or NaN `x`.
///
/// Digit by digit on the 24-bit significand, in integers only: no table and no float
/// operation, so it is small on a core without an FPU and gives the IEEE result, the same bits
/// as a hardware square root, on every target (the Box-Muller radius goes through it).
pub fn sqrt_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    if bits == 0 || bits == 0x8000_0000 || bits == 0x7F80_0000 {
        // +-0 and +inf are their own roots.
        return x;
    }
    if bits > 0x7F80_0000 {
        // NaN, or negative (the sign bit makes every negative pattern larger).
        return f32::NAN;
    }
    // x = sig * 2^exp with sig a 24-bit integer whose top bit is set (subnormals normalised).
    let mut exp = (bits >> 23) as i32;
    let mut sig = bits & 0x007F_FFFF;
    if exp == 0 {
        let shift = sig.leading_zeros() - 8;
        sig <<= shift;
        exp = 1 - shift as i32;
    } else {
        sig |= 0x0080_0000;
    }
    // Unbiased exponent of the leading bit; make it even by moving one bit into `sig`.
    let mut e = exp - 127;
    if e & 1 != 0 {
        sig <<= 1;
        e -= 1;
    }
    // sqrt(sig * 2^e) = sqrt(sig * 2) * 2^(e/2 - 1/2): the 25-bit integer root of `sig << 1`
    // (a 25- or 26-bit value) is the 24-bit significand plus one bit below it.
    let mut rem = sig << 1;
    let mut root = 0u32;
    let mut s = 0u32;
    let mut bit = 0x0100_0000u32;
    while bit != 0 {
        let t = s + bit;
        if t <= rem {
            s = t + bit;
            rem -= t;
            root += bit;
        }
        rem <<= 1;
        bit >>= 1;
    }
    // The last bit of `root` is the half unit. A square root is never exactly halfway between
    // two floats, so rounding to nearest rounds up exactly when that bit is set.
    root += root & 1;
    let sig = root >> 1;
    // `sig` is in [2^23, 2^24]; the carry of a round-up to 2^24 moves into the exponent field.
    let biased = (e >> 1) + 126;
    f32::from_bits(((biased as u32) << 23).wrapping_add(sig))
}

/// `(sin 2 pi t, cos 2 pi t)` in f32 arithmetic only (for `|t| < 2^20`; the sampler passes `t`
/// in `[0, 1)`).
///
/// The reduction is exact: `t` is split into a quadrant `q` and a fraction `y` in `[-1/2, 1/2]`
/// of a quarter turn (`4t = q + y`; both exact in f32 for every `t` of [`Rng::next_f32`], a
/// multiple of 2^-24). Then `sin(pi y / 2)` and `cos(pi y / 2)` (angles up to pi/4) are odd and
/// even Taylor polynomials in `y` of degree 9 and 10, whose truncation errors are below 2e-9
/// and 1e-10; with f32 rounding the results are within 2e-7 (absolute) of the exact values
/// (checked against f64 over every 2^-16 step of `t` in the tests). Finally the quadrant
/// rotates the pair.
pub fn sin_cos_turns(t: f32) -> (f32, f32) {
    use core::f32::consts::FRAC_PI_2;
    // Exact (a power-of-two scaling).
    let x = 4.0 * t;
    // Nearest quadrant; `x - k` is exact for the sampler's t (multiples of 2^-24: x and k are
    // multiples of 2^-22 and |x - k| <= 1/2).
    let k = libm::roundf(x);
    let y = x - k;
    let y2 = y * y;
    // sin(pi y / 2) = sum (-1)^n (pi/2)^(2n+1) y^(2n+1) / (2n+1)!
    const S1: f32 = FRAC_PI_2;
    const S3: f32 = -0.645_964_1; // -(pi/2)^3 / 3!
    const S5: f32 = 0.079_692_626; // (pi/2)^5 / 5!
    const S7: f32 = -0.004_681_754; // -(pi/2)^7 / 7!
    const S9: f32 = 0.000_160_441_18; // (pi/2)^9 / 9!

    // cos(pi y / 2) = sum (-1)^n (pi/2)^(2n) y^(2n) / (2n)!
    const C2: f32 = -1.233_700_6; // -(pi/2)^2 / 2!
    const C4: f32 = 0.253_669_5; // (pi/2)^4 / 4!
    const C6: f32 = -0.020_863_48; // -(pi/2)^6 / 6!
    const C8: f32 = 0.000_919_260_3; // (pi/2)^8 / 8!
    const C10: f32 = -0.000_025_202_042; // -(pi/2)^10 / 10!
    let s = y * (S1 + y2 * (S3 + y2 * (S5 + y2 * (S7 + y2 * S9))));
    let c = 1.0 + y2 * (C2 + y2 * (C4 + y2 * (C6 + y2 * (C8 + y2 * C10))));
    // Rotate by k quarter turns (k mod 4 by two's complement, also for negative t).
    match (k as i32) & 3 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors_from_state_1_2_3_4() {
        // The xoshiro128++ reference implementation from state [1, 2, 3, 4].
        let mut r = Rng::from_state([1, 2, 3, 4]);
        let expected = [
            641,
            1_573_767,
            3_222_811_527,
            3_517_856_514,
            836_907_274,
            4_247_214_768,
        ];
        for e in expected {
            assert_eq!(r.next_u32(), e);
        }
    }

    #[test]
    fn sin_cos_turns_within_2e7_of_f64() {
        // Every t = i / 2^16 (a superset of the quadrant boundaries and the octant ties);
        // 2e-7 absolute is about 2 ulp at 1 and bounds the polynomial plus f32 rounding.
        const TOL: f64 = 2e-7;
        for i in 0..1u32 << 16 {
            let t = i as f32 / 65_536.0;
            let (s, c) = sin_cos_turns(t);
            let a = core::f64::consts::TAU * f64::from(t);
            assert!(
                (f64::from(s) - libm::sin(a)).abs() <= TOL,
                "sin at {t}: {s}"
            );
            assert!(
                (f64::from(c) - libm::cos(a)).abs() <= TOL,
                "cos at {t}: {c}"
            );
        }
        // The largest uniform, 1 - 2^-24.
        let (s, c) = sin_cos_turns(1.0 - 1.0 / 16_777_216.0);
        let a = core::f64::consts::TAU * (1.0 - 1.0 / 16_777_216.0);
        assert!((f64::from(s) - libm::sin(a)).abs() <= TOL);
        assert!((f64::from(c) - libm::cos(a)).abs() <= TOL);
    }

    #[test]
    fn uniform_is_in_unit_interval() {
        let mut r = Rng::seed_from_u64(7);
        for _ in 0..10_000 {
            let u = r.next_f32();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
