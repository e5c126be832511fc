//! Measurement probes: marker functions for the QEMU instruction counter, stack painting, and a
//! SysTick-based instruction estimate.

use core::ptr::{addr_of, read_volatile, write_volatile};
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;

/// Written by the markers with volatile stores, so that neither call can be optimised away.
static mut MARK: u32 = 0;

/// Start of the measured window: `tools/qemu/insncount.c` counts instructions from the first
/// instruction of this function up to the first instruction of [`bench_stop`].
/// The two bodies differ so that LLVM cannot merge them into one symbol.
#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_start() {
    // SAFETY: a plain word store to a static only the markers touch (single core).
    unsafe { write_volatile(&raw mut MARK, 0x5157_0001) };
}

/// End of the measured window (see [`bench_start`]).
#[no_mangle]
#[inline(never)]
pub extern "C" fn bench_stop() {
    // SAFETY: as in `bench_start`.
    unsafe { write_volatile(&raw mut MARK, 0x5157_0002) };
}

extern "C" {
    /// Lowest stack address (end of .bss), from cortex-m-rt's link.x.
    static _stack_end: u32;
    /// Initial stack pointer (top of RAM).
    static _stack_start: u32;
}

/// `cortex-m-rt`'s `paint-stack` fills the stack with this word at reset.
const PAINT: u32 = 0xCCCC_CCCC;

/// Top of the stack (initial SP).
pub fn stack_top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Re-paints the unused stack below the current SP (minus a margin for this function's frame).
#[inline(never)]
pub fn repaint_below_sp() {
    let sp = cortex_m::register::msp::read() as usize - 64;
    let mut p = addr_of!(_stack_end) as usize;
    while p < sp {
        // SAFETY: `_stack_end..sp` is stack memory below the live frames; nothing else uses it.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Lowest stack address whose paint was overwritten.
pub fn lowest_used() -> usize {
    let mut p = addr_of!(_stack_end) as usize;
    let top = stack_top();
    // SAFETY: reads words of the stack region `_stack_end.._stack_start`, all mapped RAM.
    while p < top && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    p
}

/// SysTick wraps (the counter is 24 bits).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Only this handler writes WRAPS, and ARMv6-M has no atomic read-modify-write.
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Nanoseconds per core clock tick of the emulated board, as a fraction `NUM / 2^SHIFT`
/// (SysTick counts the core clock; a power-of-two denominator keeps 64-bit division out).
#[cfg(not(any(armv6m, armv8m)))]
const NS_PER_TICK: (u64, u32) = (40, 0); // mps2-an385 / an386 / an500: 25 MHz
#[cfg(armv8m)]
const NS_PER_TICK: (u64, u32) = (50, 0); // mps2-an505: 20 MHz
#[cfg(armv6m)]
const NS_PER_TICK: (u64, u32) = (125, 1); // microbit (nRF51 HCLK): 16 MHz, 62.5 ns

const RELOAD: u32 = 0x00FF_FFFF;

/// Starts SysTick free-running on the core clock, with an interrupt on every wrap.
pub fn start_systick(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Core clock ticks since [`start_systick`].
pub fn ticks() -> u64 {
    loop {
        let w0 = WRAPS.load(Ordering::SeqCst);
        let cur = SYST::get_current();
        let w1 = WRAPS.load(Ordering::SeqCst);
        if w0 == w1 {
            return u64::from(w0) * (u64::from(RELOAD) + 1) + u64::from(RELOAD - cur);
        }
    }
}

/// Instructions represented by `ticks` under QEMU `-icount shift=0` (1 ns per instruction).
/// Without `-icount`, SysTick follows host time and this number means nothing.
pub fn ticks_to_insns(ticks: u64) -> u64 {
    (ticks * NS_PER_TICK.0) >> NS_PER_TICK.1
}
