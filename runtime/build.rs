//! Enables the Cortex-M4/M7 DSP-extension int8 kernels (`cfg(tinygen_dsp)`) on `thumbv7em`
//! targets. `target_feature = "dsp"` is not visible to `cfg` on stable Rust, so the target
//! name decides.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinygen_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=tinygen_dsp");
    }
}
