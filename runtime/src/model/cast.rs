//! Viewing validated bytes as `f32`, `i32` and `i8` slices in place (weights stay in flash, the
//! arena stays the caller's). One of the runtime's three modules with `unsafe` code, with
//! `kernels::dsp` (Cortex-M4 inline assembly) and `kernels::x86` (SIMD loads).
//!
//! Each view checks alignment and length itself, so these functions are sound for any input; the
//! targets must be little-endian because the file stores little-endian numbers.
#![allow(unsafe_code)]

#[cfg(target_endian = "big")]
compile_error!(
    "tinygen-runtime reads little-endian tensors in place; big-endian targets are not supported"
);

/// `bytes` as `f32`s, if its start is 4-byte aligned and its length a multiple of 4.
pub(crate) fn f32s(bytes: &[u8]) -> Option<&[f32]> {
    let ptr = bytes.as_ptr().cast::<f32>();
    if !ptr.is_aligned() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    // SAFETY: `ptr` is non-null and aligned for f32 (checked above) and points to
    // `bytes.len()` initialised bytes that stay borrowed (shared) for the returned lifetime;
    // `len / 4` f32s cover exactly those bytes, and every bit pattern is a valid f32.
    Some(unsafe { core::slice::from_raw_parts(ptr, bytes.len() / 4) })
}

/// `bytes` as `i32`s, if its start is 4-byte aligned and its length a multiple of 4.
pub(crate) fn i32s(bytes: &[u8]) -> Option<&[i32]> {
    let ptr = bytes.as_ptr().cast::<i32>();
    if !ptr.is_aligned() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    // SAFETY: as in `f32s`: aligned, in bounds, shared borrow kept, every bit pattern is an i32.
    Some(unsafe { core::slice::from_raw_parts(ptr, bytes.len() / 4) })
}

/// `bytes` as `i8`s.
pub(crate) fn i8s(bytes: &[u8]) -> &[i8] {
    // SAFETY: i8 has the size and alignment of u8 and every bit pattern is valid; the length and
    // the shared borrow carry over unchanged.
    unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
}

/// `bytes` as mutable `i8`s.
pub(crate) fn i8s_mut(bytes: &mut [u8]) -> &mut [i8] {
    // SAFETY: as in `i8s`; the exclusive borrow of `bytes` moves into the result, so no alias
    // remains.
    unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<i8>(), bytes.len()) }
}

/// The largest 4-byte aligned part of `bytes` that starts within its first 3 bytes, as `f32`s
/// (empty if there is none).
pub(crate) fn aligned_f32s_mut(bytes: &mut [u8]) -> &mut [f32] {
    let skip = bytes.as_ptr().align_offset(core::mem::align_of::<f32>());
    let Some(rest) = bytes.get_mut(skip..) else {
        return &mut [];
    };
    let ptr = rest.as_mut_ptr().cast::<f32>();
    if !ptr.is_aligned() {
        return &mut [];
    }
    // SAFETY: `ptr` is aligned for f32 (checked) and `rest` holds at least `len / 4 * 4`
    // initialised bytes; the exclusive borrow of `bytes` moves into the result, and every bit
    // pattern is a valid f32.
    unsafe { core::slice::from_raw_parts_mut(ptr, rest.len() / 4) }
}

/// The part of `bytes` from its first 4-byte aligned address on, as `i8`s (empty if there is
/// none): the int8 arena starts where the f32 one would.
pub(crate) fn aligned_i8s_mut(bytes: &mut [u8]) -> &mut [i8] {
    let skip = bytes.as_ptr().align_offset(core::mem::align_of::<f32>());
    match bytes.get_mut(skip..) {
        Some(rest) => i8s_mut(rest),
        None => &mut [],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(16))]
    struct Buf([u8; 36]);

    #[test]
    fn f32_view_reads_little_endian_and_rejects_misalignment() {
        let mut buf = Buf([0; 36]);
        buf.0[..4].copy_from_slice(&1.5f32.to_le_bytes());
        buf.0[4..8].copy_from_slice(&(-2.0f32).to_le_bytes());
        assert_eq!(f32s(&buf.0[..8]), Some(&[1.5f32, -2.0][..]));
        assert!(f32s(&buf.0[1..9]).is_none(), "misaligned start");
        assert!(f32s(&buf.0[..7]).is_none(), "ragged length");
        buf.0[8..12].copy_from_slice(&(-7i32).to_le_bytes());
        assert_eq!(i32s(&buf.0[8..12]), Some(&[-7i32][..]));
        assert!(i32s(&buf.0[2..6]).is_none());
    }

    #[test]
    fn i8_views_reinterpret_bytes() {
        let mut b = [0u8, 1, 127, 128, 255];
        assert_eq!(i8s(&b), &[0i8, 1, 127, -128, -1]);
        i8s_mut(&mut b)[0] = -2;
        assert_eq!(b[0], 254);
    }

    #[test]
    fn aligned_arena_view_skips_at_most_three_bytes() {
        let mut buf = Buf([0; 36]);
        for start in 0..4 {
            let part = &mut buf.0[start..start + 27];
            let f = aligned_f32s_mut(part);
            // 27 bytes from any start hold at least 6 aligned f32s (27 - 3 = 24 bytes).
            assert!(f.len() >= 6, "start {start}: {}", f.len());
            f.fill(1.0);
        }
    }
}
