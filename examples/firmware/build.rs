//! Picks the memory layout for the target and the embedded model for `FW_MODEL`.
//!
//! `FW_MODEL=<name>` selects `models/<name>.tgm` (or `models/<name>.w.bin` for the kernel
//! benchmark) plus `models/<name>.rs`, both written by the host generator
//! (`examples/firmware/host-gen`, run by `tools/qemu/run-firmware.sh`). `<name>.rs` holds the
//! arena size, the seed, the MAC count and the checksums the host computed.
use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let armv6m = target.starts_with("thumbv6m");
    let armv8m = target.starts_with("thumbv8m");

    println!("cargo:rerun-if-env-changed=FW_MODEL");
    println!("cargo:rerun-if-env-changed=FW_MODELS_DIR");
    // FW_SELFTEST_FAIL=1 flips one bit of every expected value: the run must then fail, which
    // shows that a passing run really compared something.
    println!("cargo:rerun-if-env-changed=FW_SELFTEST_FAIL");
    println!("cargo::rustc-check-cfg=cfg(selftest_fail)");
    if env::var_os("FW_SELFTEST_FAIL").is_some_and(|v| v == "1") {
        println!("cargo:rustc-cfg=selftest_fail");
    }
    let default_model = if armv6m { "tiny-f32" } else { "mlp-i8" };
    let model = env::var("FW_MODEL").unwrap_or_else(|_| default_model.to_string());
    let models = env::var_os("FW_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("models"));
    let meta = models.join(format!("{model}.rs"));
    let kernel_bench = model.ends_with("-kernel");
    let payload = models.join(if kernel_bench {
        format!("{model}.w.bin")
    } else {
        format!("{model}.tgm")
    });
    for p in [&meta, &payload] {
        if !p.is_file() {
            panic!(
                "{} is missing: generate the models first (tools/qemu/run-firmware.sh does, or \
                 `cargo run --release --manifest-path examples/firmware/host-gen/Cargo.toml` from the repo root)",
                p.display()
            );
        }
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let len = fs::metadata(&payload).expect("payload readable").len();
    fs::write(
        out.join("selected.rs"),
        format!(
            "/// Name of the embedded model (`FW_MODEL`).\n\
             pub const MODEL_NAME: &str = {model:?};\n\
             /// The embedded bytes, 16-byte aligned as the runtime requires.\n\
             pub static PAYLOAD: Aligned<[u8; {len}]> = Aligned(*include_bytes!({payload:?}));\n\
             include!({meta:?});\n"
        ),
    )
    .expect("write selected.rs");

    // f32 weights of the 28x28 models (1.2-1.3 MiB) need the board's 4 MiB as flash; every
    // other image must fit an MCU-like 512 KiB. The ARMv8-M target runs on the AN505
    // (Cortex-M33, Secure aliases); the ARMv7-M targets on the AN385 / AN386 / AN500, which
    // share one memory map.
    let f32_weights = model.ends_with("-f32");
    let mem: &[u8] = match (armv6m, armv8m, f32_weights) {
        (true, _, _) => include_bytes!("memory-microbit.x"),
        (false, true, true) => include_bytes!("memory-an505.x"),
        (false, true, false) => include_bytes!("memory-an505-512k.x"),
        (false, false, true) => include_bytes!("memory-mps2.x"),
        (false, false, false) => include_bytes!("memory-mps2-512k.x"),
    };
    // NB: a file named memory.x in the package root would shadow this one (linker cwd).
    fs::write(out.join("memory.x"), mem).expect("write memory.x");
    // cortex-m-rt's `device` feature includes device.x, where a device crate names its
    // interrupt handlers; the firmware's `__INTERRUPTS` uses only `DefaultHandler`.
    fs::write(
        out.join("device.x"),
        b"/* no device interrupt handlers */\n",
    )
    .expect("write device.x");
    println!("cargo:rustc-link-search={}", out.display());
    for f in [
        "memory-mps2.x",
        "memory-mps2-512k.x",
        "memory-an505.x",
        "memory-an505-512k.x",
        "memory-microbit.x",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo::rustc-check-cfg=cfg(armv6m)");
    println!("cargo::rustc-check-cfg=cfg(armv8m)");
    println!("cargo::rustc-check-cfg=cfg(kernel_bench)");
    if armv6m {
        println!("cargo:rustc-cfg=armv6m");
    }
    if armv8m {
        println!("cargo:rustc-cfg=armv8m");
    }
    if kernel_bench {
        println!("cargo:rustc-cfg=kernel_bench");
    }
}
