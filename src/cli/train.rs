//! `tinygen train`: trains a model into a run folder.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use tinygen_trainer::models::{AdvLoss, Likelihood, Losses, ModelConfig, ModelKind};
use tinygen_trainer::train::{EpochReport, Observer, Outcome, Run, RunInfo, TrainConfig};

/// Exit status after an interruption (Ctrl-C), as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// The models `tinygen train` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelArg {
    /// MLP VAE (784-400-20, pytorch/examples recipe).
    Vae,
    /// Convolutional VAE (two stride-2 convolutions; decoder Dense -> ConvTranspose x2).
    VaeConv,
    /// MLP GAN (G 100-256-512-1024-784 with BatchNorm; D 784-512-256-1).
    Gan,
    /// DCGAN (Dense -> 7x7x64 -> ConvTranspose x2; Conv x2 discriminator).
    Dcgan,
    /// VAE whose decoder is also a GAN generator, with an MLP discriminator.
    Vaegan,
    /// RealNVP normalizing flow (affine couplings with MLPs, actnorm; exact likelihood).
    Flow,
}

impl From<ModelArg> for ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Vae => ModelKind::Vae,
            ModelArg::VaeConv => ModelKind::VaeConv,
            ModelArg::Gan => ModelKind::Gan,
            ModelArg::Dcgan => ModelKind::Dcgan,
            ModelArg::Vaegan => ModelKind::VaeGan,
            ModelArg::Flow => ModelKind::Flow,
        }
    }
}

/// VAE reconstruction likelihood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LikelihoodArg {
    /// Binary cross-entropy summed over pixels.
    Bernoulli,
    /// Squared error (unit-variance Gaussian) summed over pixels.
    Gaussian,
}

/// Adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    /// Generator maximises log D(G(z)) (DCGAN's choice).
    Nonsaturating,
    /// Generator minimises log(1 - D(G(z))) (the original minimax game).
    Minimax,
    /// Least squares (LSGAN).
    Lsgan,
    /// Hinge loss.
    Hinge,
}

/// Options of `tinygen train`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes into the run folder (--out): config.json, checkpoint.safetensors (every epoch, atomically),
metrics.csv and metrics.jsonl (train and test metrics per epoch), samples_epoch_NNN.png and
samples.png (fixed latents), for VAEs reconstructions_epoch_NNN.png and reconstructions.png, for
a flow samples_temperature_epoch_NNN.png and samples_temperature.png (the latents at --temperature).
Ctrl-C saves a checkpoint and stops; --resume continues exactly where it stopped.

Examples:
  tinygen train vae --epochs 2                       # built-in MNIST-10k (28x28), runs/vae
  tinygen train vae --data builtin:digits --epochs 20  # built-in UCI 8x8 digits (fast)
  tinygen train vae --data ~/mnist --epochs 10 --threads 1
  tinygen train dcgan --data ~/mnist --ema 0.999 --out runs/dcgan
  tinygen train vae --data ~/mnist --epochs 20 --resume   # continue runs/vae to 20 epochs
  tinygen train flow --data ~/mnist --couplings 8 --hidden 256 --temperature 0.7")]
pub struct Args {
    /// Which model to train.
    #[arg(value_enum)]
    pub model: ModelArg,

    /// Training data: a folder of IDX files (MNIST, Fashion-MNIST, ...: train-images-idx3-ubyte[.gz]
    /// and friends), a UCI digits CSV file, or a built-in data set: builtin:mnist (the MNIST test
    /// set, 10,000 28x28 images: the first 8,000 train, the last 2,000 test) or builtin:digits
    /// (UCI 8x8 digits, 1,797 images: 1,498 train, 299 test). Default: builtin:mnist.
    #[arg(long, value_name = "DIR|FILE|builtin:NAME")]
    pub data: Option<PathBuf>,

    /// Total number of epochs (with --resume: train until this many are done). Default: the
    /// model's recipe, 20 for dcgan and 10 for the others (with --resume: the run's own).
    #[arg(long, value_name = "N")]
    pub epochs: Option<u64>,

    /// Seed for weights, batch order and noise; the same seed and --threads give the same run.
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,

    /// Threads for matrix products (1-4). Default: matrixmultiply's choice (physical cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: Option<u32>,

    /// Run folder. Default: runs/<model>.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Images per step. Default: 128 for vae, vae-conv and flow, 64 for the GANs and vaegan.
    #[arg(long, value_name = "B")]
    pub batch_size: Option<usize>,

    /// Learning rate of every part. Default: 1e-3 for the VAEs and vaegan's encoder and
    /// decoder, 2e-4 for the GANs and every discriminator.
    #[arg(long, value_name = "LR")]
    pub lr: Option<f32>,

    /// Use only the first N training images.
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,

    /// Use only the first N test images.
    #[arg(long, value_name = "N")]
    pub limit_test: Option<usize>,

    /// Continue the run in --out from its last checkpoint (its config.json settings apply;
    /// only --epochs, --data and --threads are taken from this command line).
    #[arg(long)]
    pub resume: bool,

    /// Latent dimension. Default: 20 for the VAEs, 100 for the GANs; a flow's is its image.
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub latent: Option<usize>,

    /// Hidden widths, comma separated: the VAE encoder (the decoder mirrors it; default 400,
    /// for vaegan 512,512), the MLP GAN generator (default 256,512,1024) or a flow's coupling
    /// networks (one width, default 256).
    #[arg(
        long,
        value_name = "N,N,..",
        value_delimiter = ',',
        help_heading = "Model"
    )]
    pub hidden: Option<Vec<usize>>,

    /// Hidden widths of the MLP discriminator (gan, vaegan), comma separated.
    #[arg(
        long,
        value_name = "N,N,..",
        value_delimiter = ',',
        default_value = "512,256",
        help_heading = "Model"
    )]
    pub d_hidden: Vec<usize>,

    /// Channels of the first convolution of vae-conv and dcgan (the second has twice as many).
    #[arg(long, value_name = "C", default_value_t = 32, help_heading = "Model")]
    pub channels: usize,

    /// Weight of the KL term (beta-VAE).
    #[arg(long, value_name = "B", default_value_t = 1.0, help_heading = "VAE")]
    pub beta: f32,

    /// Raise the KL weight linearly from 0 to --beta over this many epochs.
    #[arg(long, value_name = "EPOCHS", default_value_t = 0, help_heading = "VAE")]
    pub kl_warmup: u64,

    /// Reconstruction likelihood.
    #[arg(long, value_enum, default_value_t = LikelihoodArg::Bernoulli, help_heading = "VAE")]
    pub likelihood: LikelihoodArg,

    /// Adversarial loss.
    #[arg(long, value_enum, default_value_t = LossArg::Nonsaturating, help_heading = "GAN")]
    pub loss: LossArg,

    /// One-sided label smoothing: the discriminator's target for real images is 1 - S.
    #[arg(long, value_name = "S", default_value_t = 0.0, help_heading = "GAN")]
    pub label_smoothing: f32,

    /// Generator (decoder) learning rate; overrides --lr.
    #[arg(long, value_name = "LR", help_heading = "GAN")]
    pub lr_g: Option<f32>,

    /// Discriminator learning rate; overrides --lr.
    #[arg(long, value_name = "LR", help_heading = "GAN")]
    pub lr_d: Option<f32>,

    /// Discriminator steps per generator step.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "GAN")]
    pub d_steps: usize,

    /// Keep an exponential moving average of the generator's (vaegan: the decoder's) weights
    /// with this decay (e.g. 0.999); samples, export and evaluation use it.
    #[arg(long, value_name = "DECAY", help_heading = "GAN")]
    pub ema: Option<f32>,

    /// vaegan: weight of the adversarial loss in the decoder's loss.
    #[arg(long, value_name = "W", default_value_t = 1.0, help_heading = "GAN")]
    pub adv_weight: f32,

    /// vaegan: weight of the reconstruction error in the discriminator's last hidden features
    /// (Larsen et al. 2016), beside the pixel reconstruction; 0 turns it off.
    #[arg(long, value_name = "W", default_value_t = 0.0, help_heading = "GAN")]
    pub feature_weight: f32,

    /// Affine coupling layers (each after an actnorm, with a fixed permutation between them).
    #[arg(long, value_name = "N", default_value_t = 8, help_heading = "Flow")]
    pub couplings: usize,

    /// alpha of the logit transform logit(alpha + (1 - 2 alpha) x) of the dequantized pixels.
    #[arg(long, value_name = "A", default_value_t = 0.05, help_heading = "Flow")]
    pub logit_alpha: f32,

    /// Temperature of the second sample grid: latents drawn from N(0, T^2).
    #[arg(long, value_name = "T", default_value_t = 0.7, help_heading = "Flow")]
    pub temperature: f32,
}

impl Args {
    fn model_config(&self, kind: ModelKind, height: usize, width: usize) -> ModelConfig {
        let mut m = ModelConfig::defaults(kind, height, width);
        if let Some(l) = self.latent {
            m.latent = l;
        }
        if let Some(h) = &self.hidden {
            m.hidden = h.clone();
        }
        m.d_hidden = self.d_hidden.clone();
        m.channels = self.channels;
        m.beta = self.beta;
        m.kl_warmup = self.kl_warmup;
        m.likelihood = match self.likelihood {
            LikelihoodArg::Bernoulli => Likelihood::Bernoulli,
            LikelihoodArg::Gaussian => Likelihood::Gaussian,
        };
        m.loss = match self.loss {
            LossArg::Nonsaturating => AdvLoss::Nonsaturating,
            LossArg::Minimax => AdvLoss::Minimax,
            LossArg::Lsgan => AdvLoss::Lsgan,
            LossArg::Hinge => AdvLoss::Hinge,
        };
        m.label_smoothing = self.label_smoothing;
        if let Some(lr) = self.lr {
            m.lr_g = lr;
            m.lr_d = lr;
        }
        m.lr_g = self.lr_g.unwrap_or(m.lr_g);
        m.lr_d = self.lr_d.unwrap_or(m.lr_d);
        m.d_steps = self.d_steps;
        m.ema = self.ema;
        m.adv_weight = self.adv_weight;
        m.feature_weight = self.feature_weight;
        m.couplings = self.couplings;
        m.logit_alpha = self.logit_alpha;
        m.temperature = self.temperature;
        m
    }
}

/// Progress display: an indicatif bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    steps: usize,
    epochs: u64,
}

fn fmt_losses(l: &Losses) -> String {
    l.iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect::<Vec<_>>()
        .join("  ")
}

impl Observer for Progress {
    fn start(&mut self, info: &RunInfo) {
        self.steps = info.steps_per_epoch;
        self.epochs = info.epochs;
        println!(
            "{} training and {} test images, {} steps per epoch, {} parameters{}",
            info.train_images,
            info.test_images,
            info.steps_per_epoch,
            info.parameters,
            if info.start_epoch > 0 || info.start_step > 0 {
                format!(
                    "; resuming at epoch {}, step {}",
                    info.start_epoch + 1,
                    info.start_step
                )
            } else {
                String::new()
            }
        );
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(info.steps_per_epoch as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_position(info.start_step as u64);
            bar.set_prefix(format!("epoch {}/{}", info.start_epoch + 1, info.epochs));
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, epoch: u64, step: usize, losses: &Losses) {
        if let Some(bar) = &self.bar {
            if step == 1 {
                bar.reset();
                bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
            }
            bar.set_position(step as u64);
            let (name, value) = losses.iter().next().unwrap_or(("loss", f64::NAN));
            bar.set_message(format!("{name} {value:.4}"));
        }
    }

    fn epoch(&mut self, r: &EpochReport) {
        let line = format!(
            "epoch {}/{} ({:.2} s): train {} | test {}",
            r.epoch,
            self.epochs,
            r.seconds,
            fmt_losses(&r.train),
            fmt_losses(&r.test)
        );
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }
}

/// Runs `tinygen train`.
pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(n) = args.threads {
        tinygen_trainer::gemm::set_num_threads(n as usize);
    }
    let kind: ModelKind = args.model.into();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(kind.name()));
    let mut run = if args.resume {
        Run::resume(&dir, Some(kind), args.epochs)
            .with_context(|| format!("resuming {}", dir.display()))?
    } else {
        let mut cfg = TrainConfig {
            model: ModelConfig::defaults(kind, 0, 0),
            data: args.data.clone(),
            epochs: args.epochs.unwrap_or(kind.default_epochs()),
            seed: args.seed,
            batch_size: args
                .batch_size
                .unwrap_or(if kind.has_discriminator() { 64 } else { 128 }),
            limit_train: args.limit_train,
            limit_test: args.limit_test,
        };
        let splits = cfg.load_data().context("loading the training data")?;
        cfg.model = args.model_config(kind, splits.height(), splits.width());
        Run::create(&dir, cfg).with_context(|| format!("starting a run in {}", dir.display()))?
    };
    let mut cfg = run.config().clone();
    if args.resume {
        if let Some(d) = &args.data {
            cfg.data = Some(d.clone());
        }
    }
    let splits = cfg.load_data().context("loading the training data")?;
    if (splits.height(), splits.width()) != (cfg.model.height, cfg.model.width) {
        anyhow::bail!(
            "the data has {}x{} images but the run in {} was trained on {}x{}",
            splits.height(),
            splits.width(),
            dir.display(),
            cfg.model.height,
            cfg.model.width
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without a checkpoint");
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
            eprintln!(
                "\ninterrupted: saving a checkpoint after this step (Ctrl-C again to quit at once)"
            );
        })
        .context("installing the Ctrl-C handler")?;
    }
    let mut progress = Progress {
        bar: None,
        steps: 0,
        epochs: cfg.epochs,
    };
    let outcome = run.train(&splits, &stop, &mut progress);
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    match outcome.with_context(|| format!("training {} in {}", kind, dir.display()))? {
        Outcome::Finished { epochs } => {
            println!("done: {epochs} epochs; run folder {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted {
            epoch,
            step,
            checkpoint,
        } => {
            println!(
                "stopped in epoch {epoch} after step {step}; checkpoint saved to {}. Continue with: tinygen train {} --out {} --epochs {} --resume",
                checkpoint.display(),
                kind,
                dir.display(),
                cfg.epochs
            );
            Ok(ExitCode::from(EXIT_INTERRUPTED))
        }
    }
}
