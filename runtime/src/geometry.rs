//! Convolution geometry: kernel, stride, padding and the output size they give. The one
//! definition the model parser, the exporter and the trainer share.

/// Kernel, stride, symmetric padding and output padding of a 2-D convolution or transposed
/// convolution, each `(height, width)`, in the ONNX / PyTorch sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvGeometry {
    /// Kernel size, each at least 1.
    pub kernel: (usize, usize),
    /// Stride, each at least 1.
    pub stride: (usize, usize),
    /// Padding, added on both sides of each axis.
    pub pad: (usize, usize),
    /// Extra rows and columns at the end of a transposed convolution's output, each smaller
    /// than the stride (ONNX `output_padding`); `(0, 0)` for a plain convolution.
    pub output_padding: (usize, usize),
}

/// A convolution layer's channels and geometry: everything but its weights. The trainer's
/// layers, the exporter's graph and its quantised form describe a convolution with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvSpec {
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Kernel size `(kh, kw)`, each at least 1.
    pub kernel: (usize, usize),
    /// Stride `(sh, sw)`, each at least 1.
    pub stride: (usize, usize),
    /// Padding `(ph, pw)`, added on both sides of each axis.
    pub pad: (usize, usize),
    /// Extra rows and columns at the end of a transposed convolution's output, each smaller
    /// than the stride (ONNX `output_padding`); `(0, 0)` for a plain convolution.
    pub output_padding: (usize, usize),
}

impl ConvSpec {
    /// Square kernel, stride and padding; no output padding.
    pub const fn square(
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        let g = ConvGeometry::square(kernel, stride, pad);
        ConvSpec::new(in_ch, out_ch, g)
    }

    /// Channels with a geometry.
    pub const fn new(in_ch: usize, out_ch: usize, g: ConvGeometry) -> Self {
        ConvSpec {
            in_ch,
            out_ch,
            kernel: g.kernel,
            stride: g.stride,
            pad: g.pad,
            output_padding: g.output_padding,
        }
    }

    /// Kernel, stride and padding, which own the checks and the output-size formulas.
    pub const fn geometry(&self) -> ConvGeometry {
        ConvGeometry {
            kernel: self.kernel,
            stride: self.stride,
            pad: self.pad,
            output_padding: self.output_padding,
        }
    }

    /// Output `(height, width)` of a plain convolution on an `h x w` input, if positive.
    pub const fn conv_out(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        self.geometry().conv_out(h, w)
    }

    /// Output `(height, width)` of a transposed convolution on an `h x w` input, if positive.
    pub const fn conv_transpose_out(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        self.geometry().conv_transpose_out(h, w)
    }
}

/// Why a [`ConvGeometry`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryError {
    /// A kernel side or a stride is zero.
    ZeroKernelOrStride,
    /// A plain convolution has output padding.
    OutputPaddingOnConv,
    /// A transposed convolution's output padding is not smaller than its stride.
    OutputPaddingNotBelowStride,
}

impl GeometryError {
    /// What is wrong, in words.
    pub const fn message(self) -> &'static str {
        match self {
            GeometryError::ZeroKernelOrStride => "kernel and stride must be at least 1",
            GeometryError::OutputPaddingOnConv => "output_padding is only for ConvTranspose2d",
            GeometryError::OutputPaddingNotBelowStride => {
                "output_padding must be smaller than the stride"
            }
        }
    }
}

impl core::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

/// Output length of a convolution along one axis: `(n + 2p - k) / s + 1` when the padded
/// input holds the kernel and `s > 0`.
#[inline]
pub const fn conv_out_len(n: usize, k: usize, s: usize, p: usize) -> Option<usize> {
    let Some(padded) = n.checked_add(2 * p) else {
        return None;
    };
    if s == 0 || padded < k {
        return None;
    }
    Some((padded - k) / s + 1)
}

/// Output length of a transposed convolution along one axis: `s (n - 1) + op + k - 2p`
/// when `n > 0` and the result is positive (no overflow).
#[inline]
pub const fn conv_transpose_out_len(
    n: usize,
    k: usize,
    s: usize,
    p: usize,
    op: usize,
) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let Some(full) = s.checked_mul(n - 1) else {
        return None;
    };
    let Some(full) = full.checked_add(op) else {
        return None;
    };
    let Some(full) = full.checked_add(k) else {
        return None;
    };
    let Some(two_p) = p.checked_mul(2) else {
        return None;
    };
    match full.checked_sub(two_p) {
        Some(o) if o > 0 => Some(o),
        _ => None,
    }
}

impl ConvGeometry {
    /// Square kernel, stride and padding; no output padding.
    pub const fn square(kernel: usize, stride: usize, pad: usize) -> Self {
        ConvGeometry {
            kernel: (kernel, kernel),
            stride: (stride, stride),
            pad: (pad, pad),
            output_padding: (0, 0),
        }
    }

    /// Checks the geometry of a plain (`transposed` false) or transposed convolution.
    #[inline]
    pub const fn check(&self, transposed: bool) -> Result<(), GeometryError> {
        if self.kernel.0 == 0 || self.kernel.1 == 0 || self.stride.0 == 0 || self.stride.1 == 0 {
            return Err(GeometryError::ZeroKernelOrStride);
        }
        let (oph, opw) = self.output_padding;
        if !transposed && (oph != 0 || opw != 0) {
            return Err(GeometryError::OutputPaddingOnConv);
        }
        if transposed && (oph >= self.stride.0 || opw >= self.stride.1) {
            return Err(GeometryError::OutputPaddingNotBelowStride);
        }
        Ok(())
    }

    /// Output `(height, width)` of a plain convolution on an `h x w` input, if positive.
    #[inline]
    pub const fn conv_out(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (Some(oh), Some(ow)) = (
            conv_out_len(h, self.kernel.0, self.stride.0, self.pad.0),
            conv_out_len(w, self.kernel.1, self.stride.1, self.pad.1),
        ) else {
            return None;
        };
        Some((oh, ow))
    }

    /// Output `(height, width)` of a transposed convolution on an `h x w` input, if positive.
    #[inline]
    pub const fn conv_transpose_out(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (Some(oh), Some(ow)) = (
            conv_transpose_out_len(
                h,
                self.kernel.0,
                self.stride.0,
                self.pad.0,
                self.output_padding.0,
            ),
            conv_transpose_out_len(
                w,
                self.kernel.1,
                self.stride.1,
                self.pad.1,
                self.output_padding.1,
            ),
        ) else {
            return None;
        };
        Some((oh, ow))
    }

    /// [`ConvGeometry::conv_transpose_out`] or [`ConvGeometry::conv_out`].
    #[inline]
    pub const fn output_size(
        &self,
        transposed: bool,
        h: usize,
        w: usize,
    ) -> Option<(usize, usize)> {
        if transposed {
            self.conv_transpose_out(h, w)
        } else {
            self.conv_out(h, w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_follow_onnx() {
        // DCGAN layers: 7 -> 14 -> 28 up, 28 -> 14 -> 7 down (k 4, s 2, p 1).
        let g = ConvGeometry::square(4, 2, 1);
        assert_eq!(g.conv_transpose_out(7, 7), Some((14, 14)));
        assert_eq!(g.conv_out(28, 28), Some((14, 14)));
        // Odd shapes, output padding, a kernel larger than the padded input.
        let odd = ConvGeometry {
            kernel: (3, 2),
            stride: (2, 3),
            pad: (1, 0),
            output_padding: (1, 2),
        };
        assert_eq!(odd.conv_transpose_out(5, 4), Some((10, 13)));
        assert_eq!(ConvGeometry::square(5, 1, 0).conv_out(4, 4), None);
        assert_eq!(ConvGeometry::square(3, 1, 2).conv_transpose_out(1, 1), None);
        assert_eq!(ConvGeometry::square(3, 0, 0).conv_out(8, 8), None);
        assert_eq!(g.conv_transpose_out(0, 3), None);
        assert_eq!(g.conv_out(usize::MAX, 1), None);
        assert_eq!(g.conv_transpose_out(usize::MAX, 1), None);
    }

    #[test]
    fn check_names_each_fault() {
        let mut g = ConvGeometry::square(3, 2, 1);
        assert_eq!(g.check(false), Ok(()));
        g.output_padding = (1, 0);
        assert_eq!(g.check(false), Err(GeometryError::OutputPaddingOnConv));
        assert_eq!(g.check(true), Ok(()));
        g.output_padding = (2, 0);
        assert_eq!(
            g.check(true),
            Err(GeometryError::OutputPaddingNotBelowStride)
        );
        g.kernel.1 = 0;
        assert_eq!(g.check(true), Err(GeometryError::ZeroKernelOrStride));
    }
}
