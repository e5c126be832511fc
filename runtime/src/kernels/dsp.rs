//! Cortex-M4/M7 DSP-extension int8 Dense (`thumbv7em` only): the four-row block of
//! `dsp_model` as one inline-assembly loop (`SXTB16` + `SMLAD`, stable `asm!`).
//!
//! One of the crate's three modules with `unsafe` code (with `model::cast` and `kernels::x86`).
//! The arithmetic is exactly that of
//! `dsp_model::rows4_model`, which the host tests compare with the reference; the firmware
//! tests compare this kernel with the reference on the emulated Cortex-M4.

use super::Requant;

/// Four rows of `n` weights (`rows.len() == 4 * n`) against the packed input: returns
/// `init` plus the dot product of each row's first `2 * packed.len()` weights (wrapping).
/// Same result as `dsp_model::rows4_model`.
#[inline(always)]
fn rows4(rows: &[i8], n: usize, packed: &[u32], init: [i32; 4]) -> [i32; 4] {
    let groups = packed.len() / 2;
    // The assembly reads 4·groups bytes of each row and 2·groups packed words: check
    // that they exist (the driver guarantees it; this keeps the block sound on its own).
    let fits = groups
        .checked_mul(4)
        .is_some_and(|g4| g4 <= n && n.checked_mul(4) == Some(rows.len()));
    if groups == 0 || !fits {
        return super::dsp_model::rows4_model(rows, n, packed, init);
    }
    let [mut a0, mut a1, mut a2, mut a3] = init;
    let mut p = rows.as_ptr(); // row 0; row 1 at p + n
    let mut q = rows.as_ptr().wrapping_add(2 * n); // row 2; row 3 at q + n
    let mut xp = packed.as_ptr();
    let mut count = groups;
    // SAFETY: `rows` holds 4·n bytes and 4·groups <= n, so every load `[p]`, `[p, n]`,
    // `[q]`, `[q, n]` of the `groups` iterations stays inside row 0, 1, 2, 3 respectively;
    // `packed` holds 2·groups words, the LDRD reads 2 per group. LDRD needs word alignment,
    // which `&[u32]` has; the weight LDRs may be unaligned, which ARMv7-M supports for LDR.
    // Only the listed registers are written, nothing is stored, the flags are clobbered
    // (no `preserves_flags`), and the stack is not touched.
    unsafe {
        core::arch::asm!(
            // count -= 2; while count >= 0: two groups per iteration
            "subs {c}, {c}, #2",
            "blt 3f",
            "2:",
            "ldrd {xa}, {xb}, [{xp}], #8",
            "ldr {w}, [{p}, {n}]",
            "sxtb16 {t}, {w}",
            "smlad {a1}, {t}, {xa}, {a1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a1}, {t}, {xb}, {a1}",
            "ldr {w}, [{p}], #4",
            "sxtb16 {t}, {w}",
            "smlad {a0}, {t}, {xa}, {a0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a0}, {t}, {xb}, {a0}",
            "ldr {w}, [{q}, {n}]",
            "sxtb16 {t}, {w}",
            "smlad {a3}, {t}, {xa}, {a3}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a3}, {t}, {xb}, {a3}",
            "ldr {w}, [{q}], #4",
            "sxtb16 {t}, {w}",
            "smlad {a2}, {t}, {xa}, {a2}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a2}, {t}, {xb}, {a2}",
            "ldrd {xa}, {xb}, [{xp}], #8",
            "ldr {w}, [{p}, {n}]",
            "sxtb16 {t}, {w}",
            "smlad {a1}, {t}, {xa}, {a1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a1}, {t}, {xb}, {a1}",
            "ldr {w}, [{p}], #4",
            "sxtb16 {t}, {w}",
            "smlad {a0}, {t}, {xa}, {a0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a0}, {t}, {xb}, {a0}",
            "ldr {w}, [{q}, {n}]",
            "sxtb16 {t}, {w}",
            "smlad {a3}, {t}, {xa}, {a3}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a3}, {t}, {xb}, {a3}",
            "ldr {w}, [{q}], #4",
            "sxtb16 {t}, {w}",
            "smlad {a2}, {t}, {xa}, {a2}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a2}, {t}, {xb}, {a2}",
            "subs {c}, {c}, #2",
            "bge 2b",
            "3:",
            // count is now -2 + (0..=1): the group left, if any
            "adds {c}, {c}, #2",
            "beq 4f",
            "ldrd {xa}, {xb}, [{xp}], #8",
            "ldr {w}, [{p}, {n}]",
            "sxtb16 {t}, {w}",
            "smlad {a1}, {t}, {xa}, {a1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a1}, {t}, {xb}, {a1}",
            "ldr {w}, [{p}], #4",
            "sxtb16 {t}, {w}",
            "smlad {a0}, {t}, {xa}, {a0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a0}, {t}, {xb}, {a0}",
            "ldr {w}, [{q}, {n}]",
            "sxtb16 {t}, {w}",
            "smlad {a3}, {t}, {xa}, {a3}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a3}, {t}, {xb}, {a3}",
            "ldr {w}, [{q}], #4",
            "sxtb16 {t}, {w}",
            "smlad {a2}, {t}, {xa}, {a2}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {a2}, {t}, {xb}, {a2}",
            "4:",
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            p = inout(reg) p,
            q = inout(reg) q,
            xp = inout(reg) xp,
            c = inout(reg) count,
            n = in(reg) n,
            xa = out(reg) _,
            xb = out(reg) _,
            w = out(reg) _,
            t = out(reg) _,
            options(nostack, readonly),
        );
    }
    let _ = (p, q, xp, count);
    [a0, a1, a2, a3]
}

/// Four output channels' dot products over one pixel's packed input words (`x`, four input
/// channels per word) and their packed weights (`w`, eight words per input word): the
/// `Dot4` of `dsp_conv`, as one inline-assembly loop. Same result as `dsp_conv::dot4_model`
/// for an even number of input words (what the driver passes).
#[inline(never)]
pub(super) fn dot4(acc: [i32; 4], x: &[u32], w: &[u32]) -> [i32; 4] {
    // Pairs of groups: the driver passes an even number of input words and eight weight words
    // for each, so this covers all of them; the bound keeps the block sound on its own.
    let pairs = x.len().min(w.len() / 8) / 2;
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    let mut xp = x.as_ptr();
    let mut wp = w.as_ptr();
    let mut count = pairs;
    // SAFETY: the loop runs `pairs` times (none if 0) and reads 2 words through `xp` and 16 through `wp`
    // per iteration (LDRDs of two words): 2·pairs <= x.len() and 16·pairs <= w.len() by the
    // bound above, all word-aligned as `&[u32]` is.
    // Only the listed registers are written, nothing is stored, the flags are clobbered
    // (no `preserves_flags`), and the stack is not touched.
    unsafe {
        core::arch::asm!(
            "cmp {c}, #0",
            "beq 8f",
            // Two groups (eight input channels) per iteration.
            "7:",
            "ldrd {xa}, {xb}, [{xp}], #8",
            "sxtb16 {t}, {xa}, ror #8",
            "sxtb16 {xa}, {xa}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a0}, {u}, {xa}, {a0}",
            "smlad {a0}, {v}, {t}, {a0}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a1}, {u}, {xa}, {a1}",
            "smlad {a1}, {v}, {t}, {a1}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a2}, {u}, {xa}, {a2}",
            "smlad {a2}, {v}, {t}, {a2}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a3}, {u}, {xa}, {a3}",
            "smlad {a3}, {v}, {t}, {a3}",
            "sxtb16 {t}, {xb}, ror #8",
            "sxtb16 {xb}, {xb}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a0}, {u}, {xb}, {a0}",
            "smlad {a0}, {v}, {t}, {a0}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a1}, {u}, {xb}, {a1}",
            "smlad {a1}, {v}, {t}, {a1}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a2}, {u}, {xb}, {a2}",
            "smlad {a2}, {v}, {t}, {a2}",
            "ldrd {u}, {v}, [{wp}], #8",
            "smlad {a3}, {u}, {xb}, {a3}",
            "smlad {a3}, {v}, {t}, {a3}",
            "subs {c}, {c}, #1",
            "bne 7b",
            "8:",
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            xp = inout(reg) xp,
            wp = inout(reg) wp,
            c = inout(reg) count,
            xa = out(reg) _,
            xb = out(reg) _,
            t = out(reg) _,
            u = out(reg) _,
            v = out(reg) _,
            options(nostack, readonly),
        );
    }
    let _ = (xp, wp, count);
    [a0, a1, a2, a3]
}

/// int8 Dense with the DSP row block; bit-exact with `reference::dense_i8`.
pub(crate) fn dense_i8(w: &[i8], b: &[i32], x: &[i8], rq: &Requant<'_>, y: &mut [i8]) {
    super::dsp_model::dense_i8_with(w, b, x, rq, y, rows4);
}
