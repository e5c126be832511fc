//! The words every tinygen crate shares about a model: which part of it a file or graph
//! holds, its precision, and the range of its output with the one rule that turns an output
//! value into a pixel. The exporter and the trainer use these instead of their own copies;
//! the byte codes of the model file are defined here beside them.

use crate::format;

/// Numeric precision of a model's weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 throughout.
    F32,
    /// int8 weights and activations, i32 accumulators.
    Int8,
}

impl Precision {
    /// The model file's code ([`format::PRECISION_F32`], [`format::PRECISION_INT8`]).
    pub const fn code(self) -> u8 {
        match self {
            Precision::F32 => format::PRECISION_F32,
            Precision::Int8 => format::PRECISION_INT8,
        }
    }

    /// The precision of a model file code, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            format::PRECISION_F32 => Some(Precision::F32),
            format::PRECISION_INT8 => Some(Precision::Int8),
            _ => None,
        }
    }

    /// Bytes of one activation element: 4 for f32, 1 for int8.
    pub const fn element_bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::Int8 => 1,
        }
    }
}

/// What part of a trained model a file or graph holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// A VAE decoder or GAN generator: latent in, image out.
    Generator,
    /// A VAE encoder (outputs `[mu, logvar]` concatenated).
    Encoder,
    /// A GAN discriminator (outputs one logit).
    Discriminator,
}

impl Part {
    /// The model file's code ([`format::KIND_GENERATOR`] and the others).
    pub const fn code(self) -> u8 {
        match self {
            Part::Generator => format::KIND_GENERATOR,
            Part::Encoder => format::KIND_ENCODER,
            Part::Discriminator => format::KIND_DISCRIMINATOR,
        }
    }

    /// The part of a model file code, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            format::KIND_GENERATOR => Some(Part::Generator),
            format::KIND_ENCODER => Some(Part::Encoder),
            format::KIND_DISCRIMINATOR => Some(Part::Discriminator),
            _ => None,
        }
    }
}

/// The range of a model's output, used to convert it to pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputRange {
    /// No fixed range; pixels clamp the value to `[0, 1]`.
    Unbounded,
    /// `[0, 1]` (sigmoid output).
    ZeroOne,
    /// `[-1, 1]` (tanh output).
    MinusOneOne,
}

impl OutputRange {
    /// The model file's code ([`format::RANGE_UNBOUNDED`] and the others).
    pub const fn code(self) -> u8 {
        match self {
            OutputRange::Unbounded => format::RANGE_UNBOUNDED,
            OutputRange::ZeroOne => format::RANGE_ZERO_ONE,
            OutputRange::MinusOneOne => format::RANGE_MINUS_ONE_ONE,
        }
    }

    /// The range of a model file code, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            format::RANGE_UNBOUNDED => Some(OutputRange::Unbounded),
            format::RANGE_ZERO_ONE => Some(OutputRange::ZeroOne),
            format::RANGE_MINUS_ONE_ONE => Some(OutputRange::MinusOneOne),
            _ => None,
        }
    }

    /// An output value mapped to `[0, 1]` (not clamped): `(v + 1) / 2` for `[-1, 1]`.
    pub fn to_unit(self, v: f32) -> f32 {
        match self {
            OutputRange::MinusOneOne => (v + 1.0) * 0.5,
            OutputRange::ZeroOne | OutputRange::Unbounded => v,
        }
    }

    /// A pixel `0..=255` for an output value: the range mapped linearly onto `0..=255`,
    /// clamped, rounded half to even (NaN gives 0). Every picture tinygen writes, from the
    /// trainer or the runtime, uses this rule.
    pub fn to_pixel(self, v: f32) -> u8 {
        let t = self.to_unit(v);
        let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
        libm::rintf(t * 255.0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_none() {
        for p in [Part::Generator, Part::Encoder, Part::Discriminator] {
            assert_eq!(Part::from_code(p.code()), Some(p));
        }
        for p in [Precision::F32, Precision::Int8] {
            assert_eq!(Precision::from_code(p.code()), Some(p));
        }
        for r in [
            OutputRange::Unbounded,
            OutputRange::ZeroOne,
            OutputRange::MinusOneOne,
        ] {
            assert_eq!(OutputRange::from_code(r.code()), Some(r));
        }
        assert_eq!(Part::from_code(3), None);
        assert_eq!(Precision::from_code(2), None);
        assert_eq!(OutputRange::from_code(3), None);
    }
}
