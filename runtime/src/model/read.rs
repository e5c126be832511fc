//! Little-endian readers of a model file's fields, failing with [`Error::Truncated`] instead of
//! panicking.

use crate::error::Error;

pub(super) fn truncated(needed: usize, got: usize) -> Error {
    Error::Truncated { needed, got }
}

pub(super) fn bytes_at<const N: usize>(file: &[u8], offset: usize) -> Result<[u8; N], Error> {
    let end = offset
        .checked_add(N)
        .ok_or(truncated(usize::MAX, file.len()))?;
    file.get(offset..end)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(truncated(end, file.len()))
}

pub(super) fn check_zero(file: &[u8], start: usize, end: usize) -> Result<(), Error> {
    let bytes = file.get(start..end).ok_or(truncated(end, file.len()))?;
    match bytes.iter().position(|&b| b != 0) {
        Some(i) => Err(Error::NonZeroReserved { offset: start + i }),
        None => Ok(()),
    }
}

pub(super) fn is_power_of_two_f32(x: f32) -> bool {
    let bits = x.to_bits();
    let exponent = (bits >> 23) & 0xFF;
    bits >> 31 == 0 && exponent != 0 && exponent != 0xFF && bits & 0x7F_FFFF == 0
}

pub(super) fn usize_to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A record (the header, a tensor or an op) checked whole: its fields come out of it with no
/// further bounds checks; `base` is its file offset, for errors.
pub(super) struct Fields<'a, const N: usize> {
    bytes: &'a [u8; N],
    base: usize,
}

impl<'a, const N: usize> Fields<'a, N> {
    /// The `N` bytes at `base` (borrowed: a copy would cost a `memcpy` per record).
    pub(super) fn read(file: &'a [u8], base: usize) -> Result<Self, Error> {
        let end = base
            .checked_add(N)
            .ok_or(truncated(usize::MAX, file.len()))?;
        let bytes = file
            .get(base..end)
            .and_then(|s| <&[u8; N]>::try_from(s).ok())
            .ok_or(truncated(end, file.len()))?;
        Ok(Fields { bytes, base })
    }

    pub(super) fn u8(&self, at: usize) -> u8 {
        self.bytes.get(at).copied().unwrap_or(0)
    }

    /// The `M` bytes at `at` (zeros past the end, which the callers' constant offsets never reach).
    fn array<const M: usize>(&self, at: usize) -> [u8; M] {
        at.checked_add(M)
            .and_then(|end| self.bytes.get(at..end))
            .and_then(|s| <[u8; M]>::try_from(s).ok())
            .unwrap_or([0; M])
    }

    pub(super) fn u16(&self, at: usize) -> usize {
        usize::from(u16::from_le_bytes(self.array(at)))
    }

    pub(super) fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.array(at))
    }

    /// A `u32` field as a `usize` (saturating on 16-bit targets).
    pub(super) fn usize(&self, at: usize) -> usize {
        usize::try_from(self.u32(at)).unwrap_or(usize::MAX)
    }

    /// Fields `start..end` are zero (else the file offset of the first byte that is not).
    pub(super) fn zero(&self, start: usize, end: usize) -> Result<(), Error> {
        match (start..end).find(|&k| self.u8(k) != 0) {
            Some(k) => Err(Error::NonZeroReserved {
                offset: self.base + k,
            }),
            None => Ok(()),
        }
    }
}
