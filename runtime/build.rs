//! Enables the Cortex-M DSP-extension int8 kernels (`cfg(tinygen_dsp)`) on targets that have
//! the extension: every `thumbv7em` target (ARMv7E-M: Cortex-M4, M7), and `thumbv8m.main`
//! (ARMv8-M Mainline: Cortex-M33, M35P, M55, M85) when the build turns the extension on, with
//! `-C target-feature=+dsp` or `-C target-cpu=` one of those cores (the target itself leaves it
//! off, since the extension is optional on ARMv8-M). `target_feature = "dsp"` is not visible to
//! `cfg` on stable Rust, so the target name and the flags decide.

/// Cores of the `thumbv8m.main` targets whose LLVM definition includes the DSP extension.
const V8M_DSP_CPUS: [&str; 4] = ["cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinygen_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let dsp = target.starts_with("thumbv7em")
        || (target.starts_with("thumbv8m.main") && flags_enable_dsp());
    if dsp {
        println!("cargo::rustc-cfg=tinygen_dsp");
    }
}

/// True if the codegen flags cargo compiles the crate with (`RUSTFLAGS`, `build.rustflags`,
/// `target.<triple>.rustflags`, passed to build scripts as `CARGO_ENCODED_RUSTFLAGS`) turn the
/// DSP extension on. As in LLVM, `target-cpu` gives the base features and `target-feature`
/// entries change them, whatever their order: the last `+dsp` or `-dsp` decides, else the core.
fn flags_enable_dsp() -> bool {
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut args = flags.split('\u{1f}');
    let (mut cpu_has_dsp, mut feature) = (false, None);
    while let Some(arg) = args.next() {
        // `-C opt=value` (two arguments), `-Copt=value` or `--codegen opt=value`.
        let opt = match arg {
            "-C" | "--codegen" => args.next().unwrap_or_default(),
            _ => arg
                .strip_prefix("-C")
                .or_else(|| arg.strip_prefix("--codegen="))
                .unwrap_or_default(),
        };
        if let Some(features) = opt.strip_prefix("target-feature=") {
            for f in features.split(',') {
                match f {
                    "+dsp" => feature = Some(true),
                    "-dsp" => feature = Some(false),
                    _ => {}
                }
            }
        } else if let Some(cpu) = opt.strip_prefix("target-cpu=") {
            cpu_has_dsp = V8M_DSP_CPUS.contains(&cpu);
        }
    }
    feature.unwrap_or(cpu_has_dsp)
}
