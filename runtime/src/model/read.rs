//! Little-endian readers of a model file's fields, each failing with [`Error::Truncated`]
//! instead of panicking.

use super::Dims;
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

pub(super) fn u8_at(file: &[u8], offset: usize) -> Result<u8, Error> {
    Ok(u8::from_le_bytes(bytes_at::<1>(file, offset)?))
}

pub(super) fn i8_at(file: &[u8], offset: usize) -> Result<i8, Error> {
    Ok(i8::from_le_bytes(bytes_at::<1>(file, offset)?))
}

pub(super) fn u16_at(file: &[u8], offset: usize) -> Result<u16, Error> {
    Ok(u16::from_le_bytes(bytes_at::<2>(file, offset)?))
}

pub(super) fn u32_at(file: &[u8], offset: usize) -> Result<u32, Error> {
    Ok(u32::from_le_bytes(bytes_at::<4>(file, offset)?))
}

pub(super) fn usize_at(file: &[u8], offset: usize) -> Result<usize, Error> {
    // A u32 always fits the 32- and 64-bit targets this crate supports; on a 16-bit target the
    // conversion fails and the value reads as too large.
    Ok(usize::try_from(u32_at(file, offset)?).unwrap_or(usize::MAX))
}

pub(super) fn dims_at(file: &[u8], offset: usize) -> Result<Dims, Error> {
    Ok(Dims {
        c: usize::from(u16_at(file, offset)?),
        h: usize::from(u16_at(file, offset + 2)?),
        w: usize::from(u16_at(file, offset + 4)?),
    })
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
