//! `tinygen compare`: a report of several evaluated runs side by side.
//!
//! Writes `report.md` with the pictures and plots beside it, and `report.html`, one
//! self-contained file (PNG pictures as data URIs, plots as inline SVG) that opens offline in
//! any browser. The text that says what the numbers mean is derived from the numbers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use plotters::prelude::*;

use crate::device::M4F_RATES_SOURCE;
use crate::eval::{EvalReport, SampleMetrics, EVAL_DIR};

/// One evaluated run in the report.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The short label (the run folder's name).
    pub label: String,
    /// The run folder.
    pub run: PathBuf,
    /// What `eval` measured.
    pub eval: EvalReport,
    /// Per-epoch metrics from `metrics.csv`: column names and rows.
    pub curves: Curves,
}

/// Columns of a run's `metrics.csv`.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    /// Column names (the first is `epoch`).
    pub names: Vec<String>,
    /// One row per epoch.
    pub rows: Vec<Vec<f64>>,
}

impl Curves {
    /// Reads `run/metrics.csv` (missing or unreadable: no curves).
    pub fn read(run: &Path) -> Curves {
        let Ok(text) = std::fs::read_to_string(run.join("metrics.csv")) else {
            return Curves::default();
        };
        let mut lines = text.lines();
        let names: Vec<String> = lines
            .next()
            .map(|h| h.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let rows = lines
            .map(|l| {
                l.split(',')
                    .map(|v| v.parse().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect();
        Curves { names, rows }
    }

    /// `(epoch, value)` of column `name`, if present.
    pub fn series(&self, name: &str) -> Option<Vec<(f64, f64)>> {
        let col = self.names.iter().position(|n| n == name)?;
        Some(
            self.rows
                .iter()
                .filter_map(|r| Some((*r.first()?, *r.get(col)?)))
                .filter(|(_, v)| v.is_finite())
                .collect(),
        )
    }
}

/// Options of a report.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The output folder.
    pub out: PathBuf,
    /// The command line that made the report, shown in it.
    pub command: String,
}

/// Loads the evaluated runs (each must have `eval/eval.json`).
pub fn load_entries(runs: &[PathBuf]) -> Result<Vec<Entry>> {
    if runs.is_empty() {
        bail!("no run folders given; pass one or more run folders evaluated with `tinygen eval`");
    }
    runs.iter()
        .map(|run| {
            let eval = EvalReport::load(run)?;
            let label = run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| run.display().to_string());
            Ok(Entry {
                label,
                run: run.clone(),
                eval,
                curves: Curves::read(run),
            })
        })
        .collect()
}

/// Colours of the series, one per run.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

type PlotResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Range of `v` padded by 5% (a unit range around a single value).
fn padded(v: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = v
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3 * hi.abs().max(1.0));
    (lo - pad)..(hi + pad)
}

/// The losses worth plotting for a run: the test loss for VAEs, D and G losses for GANs.
fn loss_columns(e: &Entry) -> Vec<(&'static str, &'static str)> {
    let mut cols = Vec::new();
    for (name, label) in [
        ("test_loss", "test loss (nats)"),
        ("train_d_loss", "D loss"),
        ("train_g_loss", "G loss"),
    ] {
        if e.curves.series(name).is_some_and(|s| !s.is_empty()) {
            cols.push((name, label));
        }
    }
    cols
}

/// Loss curves, one panel per run, as SVG.
fn loss_plot(entries: &[Entry]) -> Result<String> {
    let mut svg = String::new();
    let n = entries.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    let (w, h) = (320 * cols as u32, 240 * rows as u32);
    let draw = |svg: &mut String| -> PlotResult {
        let root = SVGBackend::with_string(svg, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((rows, cols));
        for (e, area) in entries.iter().zip(panels.iter()) {
            let series: Vec<(&str, Vec<(f64, f64)>)> = loss_columns(e)
                .into_iter()
                .filter_map(|(c, l)| Some((l, e.curves.series(c)?)))
                .collect();
            let xs = padded(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)));
            let ys = padded(series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)));
            let mut chart = ChartBuilder::on(area)
                .caption(&e.label, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(48)
                .build_cartesian_2d(xs, ys)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .x_labels(6)
                .y_labels(5)
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            for (i, (label, s)) in series.into_iter().enumerate() {
                let c = colour(i);
                chart
                    .draw_series(LineSeries::new(s.clone(), c.stroke_width(2)))?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], c));
                chart.draw_series(s.into_iter().map(|p| Circle::new(p, 2, c.filled())))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .draw()?;
        }
        root.present()?;
        Ok(())
    };
    draw(&mut svg).map_err(|e| anyhow::anyhow!("drawing the loss curves: {e}"))?;
    Ok(svg)
}

/// Precision against recall of every run, float (filled) and int8 (hollow), as SVG.
fn pr_plot(entries: &[Entry]) -> Result<String> {
    let mut svg = String::new();
    let draw = |svg: &mut String| -> PlotResult {
        let root = SVGBackend::with_string(svg, (520, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "precision (samples look real) vs recall (data covered)",
                ("sans-serif", 15),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("recall")
            .y_desc("precision")
            .draw()?;
        for (i, e) in entries.iter().enumerate() {
            let c = colour(i);
            let f = &e.eval.float;
            chart
                .draw_series(std::iter::once(Circle::new(
                    (f.recall, f.precision),
                    6,
                    c.filled(),
                )))?
                .label(format!("{} (float; hollow: int8)", e.label))
                .legend(move |(x, y)| Circle::new((x + 6, y), 5, c.filled()));
            chart.draw_series(std::iter::once(Text::new(
                e.label.clone(),
                (f.recall + 0.025, f.precision + 0.02),
                ("sans-serif", 13).into_font().color(&c),
            )))?;
            if let Some(q) = &e.eval.int8 {
                chart.draw_series(std::iter::once(Circle::new(
                    (q.recall, q.precision),
                    8,
                    c.stroke_width(2),
                )))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw(&mut svg).map_err(|e| anyhow::anyhow!("drawing the precision-recall plot: {e}"))?;
    Ok(svg)
}

fn opt(v: Option<usize>) -> String {
    v.map_or_else(|| "-".into(), thousands)
}

/// `1234567` as `1,234,567`.
pub fn thousands(v: usize) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn millions(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2} M", v / 1e6)
    } else {
        "-".into()
    }
}

fn pct(a: f64, b: f64) -> String {
    if b.abs() > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:+.1}%", 100.0 * (a - b) / b)
    } else {
        "-".into()
    }
}

/// The main table, as markdown rows.
fn metrics_table(entries: &[Entry]) -> String {
    let mut s = String::from(
        "| model | epochs | training | parameters | FD | precision | recall | coverage | class KL | nearest-train ratio | ELBO loss | IW-NLL (k) | active units | exact NLL (bits/dim) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let r = &e.eval;
        let f = &r.float;
        let (elbo, iw, au) = match &r.vae {
            Some(v) => (
                format!("{:.2}", v.elbo_loss),
                v.iw_nll
                    .last()
                    .map_or("-".into(), |&(k, x)| format!("{x:.2} ({k})")),
                format!("{}/{}", v.active_units, v.latent),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let exact = r.flow.as_ref().map_or("-".into(), |m| {
            format!("{:.2} nats ({:.3})", m.nll, m.bits_per_dim)
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {:.3} | {:.3} | {}/{} | {:.3} | {:.2} | {elbo} | {iw} | {au} | {exact} |",
            if e.label == r.kind {
                e.label.clone()
            } else {
                format!("{} ({})", e.label, r.kind)
            },
            r.epochs,
            if r.train_seconds.is_finite() {
                format!("{:.0} s", r.train_seconds)
            } else {
                "-".into()
            },
            thousands(r.parameters),
            f.fd,
            f.precision,
            f.recall,
            f.coverage,
            f.classes,
            f.class_kl,
            f.nearest_train_ratio,
        );
    }
    s
}

/// The int8 table: float and int8 metrics side by side.
fn int8_table(entries: &[Entry]) -> String {
    let mut s = String::from(
        "| model | FD float | FD int8 | FD change | precision float / int8 | recall float / int8 | coverage float / int8 |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let f = &e.eval.float;
        match &e.eval.int8 {
            Some(q) => {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} | {:.2} | {} | {:.3} / {:.3} | {:.3} / {:.3} | {} / {} |",
                    e.label,
                    f.fd,
                    q.fd,
                    pct(q.fd, f.fd),
                    f.precision,
                    q.precision,
                    f.recall,
                    q.recall,
                    f.coverage,
                    q.coverage
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "| {} | {:.2} | no int8 export | - | - | - | - |",
                    e.label, f.fd
                );
            }
        }
    }
    s
}

/// The device table.
fn device_table(entries: &[Entry]) -> String {
    let mut s = String::from(
        "| model | MACs per sample | f32 file | int8 file | f32 arena | int8 arena | M4F instructions f32 (est.) | M4F instructions int8 (est.) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let d = &e.eval.device;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            e.label,
            thousands(d.macs),
            opt(d.f32_bytes),
            opt(d.int8_bytes),
            opt(d.f32_arena),
            opt(d.int8_arena),
            millions(d.m4f_insns_f32),
            millions(d.m4f_insns_int8),
        );
    }
    s
}

fn best_by(entries: &[Entry], key: impl Fn(&SampleMetrics) -> f64) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| key(&e.eval.float).is_finite())
        .max_by(|a, b| key(&a.eval.float).total_cmp(&key(&b.eval.float)))
}

/// What the numbers say, in sentences built from them.
pub fn findings(entries: &[Entry]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = best_by(entries, |m| -m.fd) {
        let floor = e.eval.fd_floor;
        out.push(format!(
            "Closest to the held-out images: **{}** (FD {:.2}; the floor, training against held-out images, is {:.2}).",
            e.label, e.eval.float.fd, floor
        ));
    }
    if let (Some(p), Some(r)) = (
        best_by(entries, |m| m.precision),
        best_by(entries, |m| m.recall),
    ) {
        if p.label == r.label {
            out.push(format!(
                "**{}** is both the sharpest (precision {:.3}: the share of its samples that fall among real images) and the most diverse (recall {:.3}: the share of real images its samples reach).",
                p.label, p.eval.float.precision, r.eval.float.recall
            ));
        } else {
            out.push(format!(
                "Sharpest: **{}** (precision {:.3}, the share of its samples that fall among real images). Most diverse: **{}** (recall {:.3}, the share of real images its samples reach).",
                p.label, p.eval.float.precision, r.label, r.eval.float.recall
            ));
        }
    }
    let vaes: Vec<&Entry> = entries.iter().filter(|e| e.eval.vae.is_some()).collect();
    let gans: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.eval.vae.is_none() && e.eval.flow.is_none())
        .collect();
    let mean = |v: &[&Entry], f: &dyn Fn(&SampleMetrics) -> f64| {
        v.iter().map(|e| f(&e.eval.float)).sum::<f64>() / v.len().max(1) as f64
    };
    if !vaes.is_empty() && !gans.is_empty() {
        let (pv, pg) = (mean(&vaes, &|m| m.precision), mean(&gans, &|m| m.precision));
        let (rv, rg) = (mean(&vaes, &|m| m.recall), mean(&gans, &|m| m.recall));
        out.push(format!(
            "GAN samples are {} than VAE samples here (mean precision {:.3} against {:.3}), and the VAEs cover {} of the data (mean recall {:.3} against {:.3} for the GANs).",
            if pg > pv { "sharper" } else { "not sharper" },
            pg,
            pv,
            if rv > rg { "more" } else { "less" },
            rv,
            rg
        ));
    }
    let dropped: Vec<String> = entries
        .iter()
        .filter(|e| e.eval.float.coverage < e.eval.float.classes)
        .map(|e| {
            format!(
                "{} ({}/{})",
                e.label, e.eval.float.coverage, e.eval.float.classes
            )
        })
        .collect();
    if dropped.is_empty() {
        out.push(
            "Every model draws every class (each receives at least 5% of the samples).".into(),
        );
    } else {
        out.push(format!(
            "Classes dropped or starved (under 5% of the samples): {}.",
            dropped.join(", ")
        ));
    }
    let copying: Vec<String> = entries
        .iter()
        .filter(|e| e.eval.float.nearest_train_ratio < 0.8)
        .map(|e| format!("{} ({:.2})", e.label, e.eval.float.nearest_train_ratio))
        .collect();
    if copying.is_empty() {
        out.push("No model copies its training images: their samples lie at least 0.8 times as far from the nearest training image as held-out images do.".into());
    } else {
        out.push(format!(
            "Samples closer to training images than held-out images are (possible copying): {}.",
            copying.join(", ")
        ));
    }
    if let Some(best) = vaes
        .iter()
        .filter_map(|e| Some((e, e.eval.vae.as_ref()?)))
        .min_by(|a, b| {
            let x = a.1.iw_nll.last().map_or(f64::INFINITY, |p| p.1);
            let y = b.1.iw_nll.last().map_or(f64::INFINITY, |p| p.1);
            x.total_cmp(&y)
        })
    {
        if let Some(&(k, nll)) = best.1.iw_nll.last() {
            out.push(format!(
                "Best likelihood: **{}**, IW-NLL {:.2} nats per image with k = {} (its ELBO loss is {:.2}; GANs have no likelihood).",
                best.0.label, nll, k, best.1.elbo_loss
            ));
        }
    }
    for e in entries {
        if let Some(f) = &e.eval.flow {
            out.push(format!(
                "**{}** (a normalizing flow) has an exact likelihood: {:.2} nats per image, {:.3} bits/dim, of the discrete 8-bit pixels of {} held-out images. It does not compare with the VAEs' IW-NLL (an estimate of a Bernoulli likelihood of the grey levels, another probability model of other data); what compares across the three families is the sample side: FD, precision, recall and coverage.",
                e.label, f.nll, f.bits_per_dim, f.images
            ));
        }
    }
    let q: Vec<(&Entry, &SampleMetrics)> = entries
        .iter()
        .filter_map(|e| Some((e, e.eval.int8.as_ref()?)))
        .collect();
    if !q.is_empty() {
        let worst = q
            .iter()
            .map(|(e, m)| (e, (m.fd - e.eval.float.fd) / e.eval.float.fd))
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()));
        if let Some((e, change)) = worst {
            out.push(format!(
                "int8 moves FD by at most {:.1}% ({}: {:+.1}%, on the same latents through the runtime); the int8 files are {}.",
                100.0 * change.abs(),
                e.label,
                100.0 * change,
                q.iter()
                    .filter_map(|(e, _)| {
                        let d = &e.eval.device;
                        Some(format!(
                            "{:.1}x smaller for {}",
                            d.f32_bytes? as f64 / d.int8_bytes? as f64,
                            e.label
                        ))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (e, _) in &q {
            let d = &e.eval.device;
            if d.m4f_insns_int8 > d.m4f_insns_f32 {
                out.push(format!(
                    "On a Cortex-M4F the int8 {} is estimated to run {:.1}x the instructions of the f32 one (the int8 convolution kernels are not yet on par with the int8 Dense kernel): int8 buys memory there, not speed.",
                    e.label,
                    d.m4f_insns_int8 / d.m4f_insns_f32
                ));
            } else {
                out.push(format!(
                    "On a Cortex-M4F the int8 {} is estimated at {:.1}x fewer instructions than the f32 one.",
                    e.label,
                    d.m4f_insns_f32 / d.m4f_insns_int8
                ));
            }
        }
    }
    // The recommendation: the lowest FD among models that cover every class (or among all, if
    // none does), with its cost.
    let covering = entries
        .iter()
        .filter(|e| e.eval.float.coverage == e.eval.float.classes)
        .min_by(|a, b| a.eval.float.fd.total_cmp(&b.eval.float.fd));
    let pick = covering
        .map(|e| (e, "the lowest FD among the models that cover every class"))
        .or_else(|| {
            entries
                .iter()
                .min_by(|a, b| a.eval.float.fd.total_cmp(&b.eval.float.fd))
                .map(|e| (e, "the lowest FD (no model covers every class)"))
        });
    if let Some((e, why)) = pick {
        let d = &e.eval.device;
        let files = match d.int8_bytes {
            Some(b) => format!(
                "{} bytes as an int8 file ({} as f32)",
                thousands(b),
                opt(d.f32_bytes)
            ),
            None => format!("{} bytes as an f32 file (no int8 file)", opt(d.f32_bytes)),
        };
        out.push(format!(
            "For the device: **{}**, {why}; {} MACs per sample, {files}.",
            e.label,
            thousands(d.macs),
        ));
    }
    out
}

/// Copies a picture of a run's eval folder into the report folder as `label-name`; returns
/// the new name.
fn copy_picture(out: &Path, e: &Entry, name: &str) -> Result<String> {
    let src = e.run.join(EVAL_DIR).join(name);
    let dst_name = format!("{}-{name}", e.label);
    let dst = out.join(&dst_name);
    std::fs::copy(&src, &dst)
        .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    Ok(dst_name)
}

/// A picture: in markdown a link to the file, in HTML the PNG inline.
struct Picture {
    file: String,
    caption: String,
}

/// Writes `report.md`, `report.html` and the files beside them into `opts.out`; returns the
/// path of `report.html`.
pub fn write_report(entries: &[Entry], opts: &CompareOptions) -> Result<PathBuf> {
    let out = &opts.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let loss_svg = loss_plot(entries)?;
    let pr_svg = pr_plot(entries)?;
    for (name, svg) in [("losses.svg", &loss_svg), ("precision-recall.svg", &pr_svg)] {
        let p = out.join(name);
        std::fs::write(&p, svg).with_context(|| format!("writing {}", p.display()))?;
    }
    // Pictures, grouped: samples of every run side by side, then int8, then per-run details.
    let mut samples = Vec::new();
    let mut int8 = Vec::new();
    let mut details: Vec<(String, Vec<Picture>)> = Vec::new();
    for e in entries {
        let im = &e.eval.images;
        samples.push(Picture {
            file: copy_picture(out, e, &im.samples)?,
            caption: format!("{} (float)", e.label),
        });
        if let Some(q) = &im.int8_samples {
            int8.push(Picture {
                file: copy_picture(out, e, q)?,
                caption: format!("{} int8 (same latents)", e.label),
            });
        }
        let mut d = vec![Picture {
            file: copy_picture(out, e, &im.nearest)?,
            caption: "samples (left) and their nearest training images (right)".into(),
        }];
        d.push(Picture {
            file: copy_picture(out, e, &im.interpolation)?,
            caption: "spherical interpolation between latents".into(),
        });
        if let Some(r) = &im.reconstructions {
            d.push(Picture {
                file: copy_picture(out, e, r)?,
                caption: "held-out images (left) and reconstructions (right)".into(),
            });
        }
        if let Some(m) = &im.manifold {
            d.push(Picture {
                file: copy_picture(out, e, m)?,
                caption: "the 2-D latent space, decoded on a grid of normal quantiles".into(),
            });
        }
        details.push((e.label.clone(), d));
    }
    let first = &entries[0].eval;
    let intro = format!(
        "Data: {} ({}x{} images). Every model draws {} images from the same latents (seed {}), compared with as many held-out images on the features of an evaluation classifier trained by tinygen ({:.2}% held-out accuracy, `{}`).",
        first.data,
        first.image.0,
        first.image.1,
        first.samples,
        first.seed,
        100.0 * first.classifier_accuracy,
        Path::new(&first.classifier)
            .file_name()
            .map_or_else(|| first.classifier.clone(), |n| n.to_string_lossy().into_owned())
    );
    let glossary = "FD: Frechet distance between the feature statistics of samples and held-out images (lower is better). Precision and recall: improved precision and recall (Kynkaanniemi et al. 2019, k = 3), the share of samples inside the real images' manifold and the share of real images inside the samples'. Coverage: classes that receive at least 5% of the samples. Class KL: KL divergence of the samples' class histogram from the held-out one (nats). Nearest-train ratio: median distance of samples to their nearest training image over the same for held-out images (below 1: closer than new data would be; well below: copying). ELBO loss and IW-NLL: nats per image on held-out images (VAEs only; IW-NLL is the importance-weighted estimate of the negative log-likelihood, Burda et al. 2015, with k samples). These sample figures compare across families; the likelihood figures compare only between VAEs.";
    let facts = findings(entries);

    // Markdown.
    let mut md = String::new();
    let _ = writeln!(md, "# Which generator? A tinygen comparison\n\n{intro}\n");
    let _ = writeln!(md, "## What the numbers say\n");
    for f in &facts {
        let _ = writeln!(md, "- {f}");
    }
    let _ = writeln!(
        md,
        "\n## Quality\n\n{}\n{glossary}\n",
        metrics_table(entries)
    );
    let _ = writeln!(md, "![precision and recall](precision-recall.svg)\n");
    let _ = writeln!(md, "## Samples (same latents)\n");
    md_pictures(&mut md, &samples);
    let _ = writeln!(
        md,
        "\n## What int8 costs\n\nThe int8 model files run through the runtime on the same latents as the float models above.\n\n{}",
        int8_table(entries)
    );
    md_pictures(&mut md, &int8);
    let _ = writeln!(
        md,
        "\n## On the device\n\n{}\nInstruction counts are estimates: {M4F_RATES_SOURCE}.\n",
        device_table(entries)
    );
    let _ = writeln!(md, "## Training\n\n![loss curves](losses.svg)\n");
    for (label, pics) in &details {
        let _ = writeln!(md, "## {label}\n");
        md_pictures(&mut md, pics);
    }
    let _ = writeln!(md, "\nMade by `{}`.", opts.command);
    let md_path = out.join("report.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;

    // HTML, self-contained.
    let mut h = String::new();
    h.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tinygen comparison</title>\n<style>\nbody{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\ntable{border-collapse:collapse;margin:1em 0;font-size:0.92em}\nth,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\nth:first-child,td:first-child{text-align:left}\nth{background:#f3f3f3}\nfigure{display:inline-block;margin:0.5em 1em 0.5em 0;vertical-align:top}\nfigure img{image-rendering:pixelated;border:1px solid #ddd}\nfigcaption{font-size:0.85em;color:#555;max-width:260px}\n.note{font-size:0.88em;color:#444}\n</style></head><body>\n");
    let _ = writeln!(
        h,
        "<h1>Which generator? A tinygen comparison</h1>\n<p>{}</p>",
        html_text(&intro)
    );
    let _ = writeln!(h, "<h2>What the numbers say</h2>\n<ul>");
    for f in &facts {
        let _ = writeln!(h, "<li>{}</li>", html_text(f));
    }
    let _ = writeln!(h, "</ul>\n<h2>Quality</h2>");
    h.push_str(&md_table_to_html(&metrics_table(entries)));
    let _ = writeln!(h, "<p class=\"note\">{}</p>", html_text(glossary));
    h.push_str(&pr_svg);
    let _ = writeln!(h, "\n<h2>Samples (same latents)</h2>");
    html_pictures(&mut h, out, &samples)?;
    let _ = writeln!(h, "<h2>What int8 costs</h2>");
    h.push_str(&md_table_to_html(&int8_table(entries)));
    html_pictures(&mut h, out, &int8)?;
    let _ = writeln!(h, "<h2>On the device</h2>");
    h.push_str(&md_table_to_html(&device_table(entries)));
    let _ = writeln!(
        h,
        "<p class=\"note\">Instruction counts are estimates: {}.</p>",
        html_text(M4F_RATES_SOURCE)
    );
    let _ = writeln!(h, "<h2>Training</h2>");
    h.push_str(&loss_svg);
    for (label, pics) in &details {
        let _ = writeln!(h, "<h2>{}</h2>", html_text(label));
        html_pictures(&mut h, out, pics)?;
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">Made by <code>{}</code>.</p>\n</body></html>",
        html_text(&opts.command)
    );
    let html_path = out.join("report.html");
    std::fs::write(&html_path, &h).with_context(|| format!("writing {}", html_path.display()))?;
    Ok(html_path)
}

fn md_pictures(md: &mut String, pics: &[Picture]) {
    if pics.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "| {} |\n|{}\n| {} |\n",
        pics.iter()
            .map(|p| p.caption.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(pics.len()),
        pics.iter()
            .map(|p| format!("![{}]({})", p.caption, p.file))
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

fn html_pictures(h: &mut String, out: &Path, pics: &[Picture]) -> Result<()> {
    let _ = writeln!(h, "<div>");
    for p in pics {
        let path = out.join(&p.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        // Shown at twice the PNG's width (IHDR: big-endian width at bytes 16..20), so
        // 28x28 digits are readable.
        let width = bytes
            .get(16..20)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_be_bytes);
        let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let _ = writeln!(
            h,
            "<figure><img alt=\"{0}\" width=\"{1}\" src=\"data:image/png;base64,{data}\"><figcaption>{0}</figcaption></figure>",
            html_text(&p.caption),
            2 * width
        );
    }
    let _ = writeln!(h, "</div>");
    Ok(())
}

/// Escapes `&`, `<`, `>` and turns `**bold**` and `` `code` `` into tags.
fn html_text(s: &str) -> String {
    let esc = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut out = String::new();
    let (mut bold, mut code) = (false, false);
    let mut chars = esc.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '*' && chars.peek() == Some(&'*') {
            chars.next();
            out.push_str(if bold { "</b>" } else { "<b>" });
            bold = !bold;
        } else if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
        } else {
            out.push(c);
        }
    }
    out
}

/// A markdown table (header, separator, rows) as an HTML table.
fn md_table_to_html(md: &str) -> String {
    let mut h = String::from("<table>\n");
    for (i, line) in md.lines().filter(|l| l.starts_with('|')).enumerate() {
        if i == 1 {
            continue; // the |---| separator
        }
        let tag = if i == 0 { "th" } else { "td" };
        h.push_str("<tr>");
        for cell in line.trim_matches('|').split('|') {
            let _ = write!(h, "<{tag}>{}</{tag}>", html_text(cell.trim()));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn html_text_escapes_and_marks_up() {
        assert_eq!(
            html_text("a < b & **c** `d`"),
            "a &lt; b &amp; <b>c</b> <code>d</code>"
        );
    }

    #[test]
    fn md_table_becomes_html() {
        let h = md_table_to_html("| a | b |\n|---|---|\n| 1 | 2 |\n");
        assert_eq!(
            h,
            "<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td>1</td><td>2</td></tr>\n</table>\n"
        );
    }
}
