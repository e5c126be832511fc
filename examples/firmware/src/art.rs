//! Checksums and ASCII rendering of generated images.

/// FNV-1a, 32 bits, over `bytes` (the same function is in the host generator).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// FNV-1a over the little-endian bytes of f32 values' bit patterns.
pub fn fnv1a_f32(values: &[f32]) -> u32 {
    fnv1a(values.iter().flat_map(|v| v.to_bits().to_le_bytes()))
}

const SHADES: &[u8] = b" .:-=+*#%@";

/// Prints a `width`-wide grey image (0 = black) as ASCII art, two characters per pixel.
pub fn print_image(pixels: &[u8], width: usize) {
    let mut line = [b' '; 2 * 64];
    for row in pixels.chunks(width.max(1)) {
        let mut n = 0;
        for (&p, cell) in row.iter().zip(line.chunks_exact_mut(2)) {
            let shade = SHADES[usize::from(p) * SHADES.len() / 256];
            cell.fill(shade);
            n += 2;
        }
        crate::out::Line::new()
            .str("|")
            .bytes(line.get(..n).unwrap_or_default())
            .str("|")
            .print();
    }
}
