//! Grayscale image grids as PNG: samples from fixed latents, and "originals | reconstructions".
//!
//! Images come as an (n, height*width) array in `[0, 1]` or `[-1, 1]` ([`PixelRange`]). Values
//! outside the range are clamped, NaN becomes black. Each image can be upscaled by an integer
//! factor (nearest neighbour) so 8x8 digits are visible; cells are separated by `pad` pixels of
//! `pad_value`. Files are written atomically ([`crate::checkpoint::write_atomic`]).

use std::path::{Path, PathBuf};

use ndarray::ArrayView2;

use crate::data::PixelRange;

/// Largest grid side accepted, in pixels (PNG allows 2^31 - 1; this guards against mistakes).
pub const MAX_SIDE: usize = 1 << 16;

/// Errors from building or writing an image grid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The images' row length is not height * width.
    #[error("images have {cols} values per row, but {height}x{width} images need {needed}")]
    RowLength {
        /// Values per row.
        cols: usize,
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
        /// `height * width`.
        needed: usize,
    },
    /// There are no images, or a size or option is zero.
    #[error("nothing to draw: {what} is zero")]
    Zero {
        /// What is zero.
        what: &'static str,
    },
    /// The grid would be too large.
    #[error("the grid would be larger than {MAX_SIDE} pixels on a side")]
    TooLarge,
    /// Originals and reconstructions differ in number or size.
    #[error(
        "{originals} originals but {reconstructions} reconstructions (rows of the two arrays)"
    )]
    CountMismatch {
        /// Originals given.
        originals: usize,
        /// Reconstructions given.
        reconstructions: usize,
    },
    /// PNG encoding failed.
    #[error("encoding PNG for {path}: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },
    /// Writing the file failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// How to lay out a grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridOptions {
    /// Images per row (fewer if there are fewer images).
    pub cols: usize,
    /// Integer upscaling of each image (1 = none).
    pub scale: usize,
    /// Pixels between cells and around the grid.
    pub pad: usize,
    /// Gray level of the padding (0 black .. 255 white).
    pub pad_value: u8,
    /// The range the pixel values are in.
    pub range: PixelRange,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            cols: 8,
            scale: 1,
            pad: 1,
            pad_value: 128,
            range: PixelRange::ZeroOne,
        }
    }
}

impl GridOptions {
    /// Defaults with `cols` per row, `range`, and a scale that makes `height` x `width` images
    /// at least about 28 pixels on their longer side (8x8 digits become 24x24, MNIST stays 1:1).
    pub fn for_images(height: usize, width: usize, cols: usize, range: PixelRange) -> Self {
        GridOptions {
            cols,
            scale: (28 / height.max(width).max(1)).max(1),
            range,
            ..GridOptions::default()
        }
    }
}

/// An 8-bit grayscale image, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` gray levels.
    pub pixels: Vec<u8>,
}

/// Maps a value in `range` to a gray level by the runtime's one pixel rule
/// ([`tinygen_runtime::vocab::OutputRange::to_pixel`]: clamped, NaN black, half to even).
pub fn to_gray(v: f32, range: PixelRange) -> u8 {
    range.output_range().to_pixel(v)
}

/// Lays out `images` (n, height*width) as a grid.
pub fn grid(
    images: ArrayView2<'_, f32>,
    height: usize,
    width: usize,
    opts: &GridOptions,
) -> Result<GrayImage, ImageError> {
    let n = images.nrows();
    for (what, v) in [
        ("the number of images", n),
        ("the image height", height),
        ("the image width", width),
        ("the number of columns", opts.cols),
        ("the scale", opts.scale),
    ] {
        if v == 0 {
            return Err(ImageError::Zero { what });
        }
    }
    let needed = height.checked_mul(width).ok_or(ImageError::TooLarge)?;
    if images.ncols() != needed {
        return Err(ImageError::RowLength {
            cols: images.ncols(),
            height,
            width,
            needed,
        });
    }
    let cols = opts.cols.min(n);
    let rows = n.div_ceil(cols);
    let side = |count: usize, cell: usize| -> Option<usize> {
        let cell = cell.checked_mul(opts.scale)?;
        let total = count
            .checked_mul(cell)?
            .checked_add(count.checked_add(1)?.checked_mul(opts.pad)?)?;
        (total <= MAX_SIDE).then_some(total)
    };
    let gw = side(cols, width).ok_or(ImageError::TooLarge)?;
    let gh = side(rows, height).ok_or(ImageError::TooLarge)?;
    let mut pixels = vec![opts.pad_value; gw * gh];
    let (cw, ch) = (width * opts.scale, height * opts.scale);
    for (k, img) in images.rows().into_iter().enumerate() {
        let x0 = opts.pad + (k % cols) * (cw + opts.pad);
        let y0 = opts.pad + (k / cols) * (ch + opts.pad);
        for y in 0..ch {
            let out = &mut pixels[(y0 + y) * gw + x0..][..cw];
            let src_row = (y / opts.scale) * width;
            for (x, px) in out.iter_mut().enumerate() {
                *px = to_gray(img[src_row + x / opts.scale], opts.range);
            }
        }
    }
    Ok(GrayImage {
        width: gw,
        height: gh,
        pixels,
    })
}

/// Two grids side by side, originals on the left and reconstructions on the right (cell `k` of
/// each shows image `k`), separated by a gap of `2 * pad` extra pixels.
pub fn comparison(
    originals: ArrayView2<'_, f32>,
    reconstructions: ArrayView2<'_, f32>,
    height: usize,
    width: usize,
    opts: &GridOptions,
) -> Result<GrayImage, ImageError> {
    if originals.nrows() != reconstructions.nrows() {
        return Err(ImageError::CountMismatch {
            originals: originals.nrows(),
            reconstructions: reconstructions.nrows(),
        });
    }
    let left = grid(originals, height, width, opts)?;
    let right = grid(reconstructions, height, width, opts)?;
    let gap = 2 * opts.pad;
    let w = left.width + gap + right.width;
    if w > MAX_SIDE {
        return Err(ImageError::TooLarge);
    }
    let h = left.height; // both grids have the same layout
    let mut pixels = Vec::with_capacity(w * h);
    for (l, r) in left
        .pixels
        .chunks_exact(left.width)
        .zip(right.pixels.chunks_exact(right.width))
    {
        pixels.extend_from_slice(l);
        pixels.extend(std::iter::repeat_n(opts.pad_value, gap));
        pixels.extend_from_slice(r);
    }
    Ok(GrayImage {
        width: w,
        height: h,
        pixels,
    })
}

/// Encodes `img` as an 8-bit grayscale PNG. `path` only names the file in errors.
pub fn encode_png(img: &GrayImage, path: &Path) -> Result<Vec<u8>, ImageError> {
    let enc_err = |source| ImageError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let w = u32::try_from(img.width).map_err(|_| ImageError::TooLarge)?;
    let h = u32::try_from(img.height).map_err(|_| ImageError::TooLarge)?;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(enc_err)?;
        writer.write_image_data(&img.pixels).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
    }
    Ok(out)
}

/// Writes `img` to `path` as a PNG, atomically.
pub fn write_png(path: &Path, img: &GrayImage) -> Result<(), ImageError> {
    let bytes = encode_png(img, path)?;
    crate::checkpoint::write_atomic(path, &bytes).map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// [`grid`] then [`write_png`].
pub fn write_grid(
    path: &Path,
    images: ArrayView2<'_, f32>,
    height: usize,
    width: usize,
    opts: &GridOptions,
) -> Result<(), ImageError> {
    write_png(path, &grid(images, height, width, opts)?)
}

/// [`comparison`] then [`write_png`].
pub fn write_comparison(
    path: &Path,
    originals: ArrayView2<'_, f32>,
    reconstructions: ArrayView2<'_, f32>,
    height: usize,
    width: usize,
    opts: &GridOptions,
) -> Result<(), ImageError> {
    write_png(
        path,
        &comparison(originals, reconstructions, height, width, opts)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn gray_levels() {
        assert_eq!(to_gray(0.0, PixelRange::ZeroOne), 0);
        assert_eq!(to_gray(1.0, PixelRange::ZeroOne), 255);
        assert_eq!(to_gray(2.0, PixelRange::ZeroOne), 255);
        assert_eq!(to_gray(f32::NAN, PixelRange::ZeroOne), 0);
        assert_eq!(to_gray(-1.0, PixelRange::MinusOneOne), 0);
        assert_eq!(to_gray(0.0, PixelRange::MinusOneOne), 128);
        assert_eq!(to_gray(1.0, PixelRange::MinusOneOne), 255);
    }

    #[test]
    fn layout_with_scale_and_partial_row() {
        // 3 images of 1x2, 2 per row, scale 2, pad 1: width 2*4 + 3 = 11, height 2*2 + 3 = 7.
        let imgs = Array2::from_shape_vec((3, 2), vec![0.0, 1.0, 1.0, 0.0, 0.0, 0.0]).unwrap();
        let opts = GridOptions {
            cols: 2,
            scale: 2,
            pad: 1,
            pad_value: 100,
            range: PixelRange::ZeroOne,
        };
        let g = grid(imgs.view(), 1, 2, &opts).unwrap();
        assert_eq!((g.width, g.height), (11, 7));
        let at = |x: usize, y: usize| g.pixels[y * g.width + x];
        assert_eq!(at(0, 0), 100);
        assert_eq!((at(1, 1), at(2, 2), at(3, 1), at(4, 2)), (0, 0, 255, 255));
        assert_eq!((at(6, 1), at(8, 2)), (255, 0));
        assert_eq!(at(5, 1), 100);
        assert_eq!((at(1, 4), at(4, 5)), (0, 0));
        assert_eq!(at(6, 4), 100); // empty cell
    }

    #[test]
    fn rejects_bad_shapes() {
        let imgs = Array2::<f32>::zeros((2, 5));
        let o = GridOptions::default();
        assert!(matches!(
            grid(imgs.view(), 2, 2, &o),
            Err(ImageError::RowLength { .. })
        ));
        let empty = Array2::<f32>::zeros((0, 4));
        assert!(matches!(
            grid(empty.view(), 2, 2, &o),
            Err(ImageError::Zero { .. })
        ));
        let big = Array2::<f32>::zeros((1, 4));
        let huge = GridOptions {
            scale: MAX_SIDE,
            ..o
        };
        assert!(matches!(
            grid(big.view(), 2, 2, &huge),
            Err(ImageError::TooLarge)
        ));
        let a = Array2::<f32>::zeros((2, 4));
        let b = Array2::<f32>::zeros((3, 4));
        assert!(matches!(
            comparison(a.view(), b.view(), 2, 2, &o),
            Err(ImageError::CountMismatch { .. })
        ));
    }

    #[test]
    fn scale_for_small_images() {
        assert_eq!(
            GridOptions::for_images(8, 8, 8, PixelRange::ZeroOne).scale,
            3
        );
        assert_eq!(
            GridOptions::for_images(28, 28, 8, PixelRange::ZeroOne).scale,
            1
        );
    }
}
