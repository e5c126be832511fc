//! The on-device sampler: xoshiro128++ seeded through SplitMix64, uniform `f32`, and Gaussian
//! samples by Box-Muller with `libm`, so the same seed gives the same latents, bit for bit, on the
//! host and on every microcontroller.
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
        if s == [0; 4] {
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
    /// sample is kept and returned by the next call.
    pub fn next_gaussian(&mut self) -> f32 {
        if let Some(bits) = self.spare.take() {
            return f32::from_bits(bits);
        }
        let u1 = 1.0 - self.next_f32();
        let u2 = self.next_f32();
        let r = libm::sqrtf(-2.0 * libm::logf(u1));
        let (sin, cos) = libm::sincosf(core::f32::consts::TAU * u2);
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
    fn uniform_is_in_unit_interval() {
        let mut r = Rng::seed_from_u64(7);
        for _ in 0..10_000 {
            let u = r.next_f32();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
