//! Console output over semihosting without `core::fmt` (which would add about 10 KB of flash):
//! a line buffer with decimal and hexadecimal number writers.
//!
//! ```ignore
//! Line::new().str("stack: ").dec(stack as u32).str(" B").print();
//! ```

use cortex_m_semihosting::hio;

/// Bytes buffered before a line is written out (longer lines are written in pieces).
const CAP: usize = 160;

/// One line of output, written to the host's stdout by [`Line::print`].
pub struct Line {
    buf: [u8; CAP],
    len: usize,
}

impl Line {
    /// An empty line.
    pub fn new() -> Self {
        Line {
            buf: [0; CAP],
            len: 0,
        }
    }

    /// Appends raw bytes, writing the buffer out whenever it fills.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if self.len == CAP {
                self.flush();
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }

    /// Appends text.
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    /// Appends `v` in decimal (32-bit arithmetic: a 64-bit division would add a library
    /// routine of about 1 KB on Cortex-M).
    pub fn dec(&mut self, mut v: u32) -> &mut Self {
        let mut digits = [0u8; 10]; // u32::MAX has 10 digits
        let mut n = 0;
        loop {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0' + (v % 10) as u8;
            }
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            if let Some(&d) = digits.get(i) {
                self.bytes(&[d]);
            }
        }
        self
    }

    /// Appends `v` as `0x` and eight hexadecimal digits.
    pub fn hex(&mut self, v: u32) -> &mut Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.str("0x");
        for k in (0..8).rev() {
            let nibble = (v >> (4 * k)) & 0xf;
            if let Some(&c) = HEX.get(nibble as usize) {
                self.bytes(&[c]);
            }
        }
        self
    }

    /// Writes the buffered bytes (nothing else: no newline).
    fn flush(&mut self) {
        if let (Ok(mut stdout), Some(bytes)) = (hio::hstdout(), self.buf.get(..self.len)) {
            // Nothing useful can be done if the host does not take the output.
            let _ = stdout.write_all(bytes);
        }
        self.len = 0;
    }

    /// Appends a newline and writes the line out.
    pub fn print(&mut self) {
        self.bytes(b"\n");
        self.flush();
    }
}

/// Prints one line of text.
pub fn line(s: &str) {
    Line::new().str(s).print();
}
