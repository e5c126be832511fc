"""Training step, timing loop and command line shared by torch_gan.py and torch_dcgan.py.

The step is the one `tinygen train gan|dcgan` takes: z ~ N(0, I); fake = G(z); the
discriminator sees the real batch and the detached fakes in two separate forward passes
(BatchNorm statistics per pass), loss = BCE(D(real), 1) + BCE(D(fake), 0) (means), one Adam
step; then the generator step on the same fakes with the non-saturating loss BCE(D(fake), 1).
Adam lr 2e-4, betas (0.5, 0.999), batch 64, images scaled to [-1, 1], the last short batch
dropped (937 steps per MNIST epoch), as in tinygen for models with BatchNorm.
"""

import argparse
import time

import numpy as np
import torch
from torch.nn import functional as F

import mnist


def step(gen_net, disc, opt_g, opt_d, real, latent):
    b = real.shape[0]
    z = torch.randn(b, latent)
    fake = gen_net(z)
    opt_d.zero_grad()
    r = disc(real)
    f = disc(fake.detach())
    d_loss = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
              + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
    d_loss.backward()
    opt_d.step()
    opt_g.zero_grad()
    f = disc(fake)
    g_loss = F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def run(name, make_gen, make_disc, image_shape, description):
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs")
    ap.add_argument("--steps", type=int, default=None,
                    help="time only this many steps per epoch and extrapolate to the full epoch")
    ap.add_argument("--warmup", type=int, default=20, help="untimed warm-up steps first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--latent", type=int, default=100)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen_perm = torch.Generator().manual_seed(args.seed)
    tr, _ = mnist.load(args.data)
    train = torch.from_numpy(tr * 2.0 - 1.0).reshape((len(tr),) + image_shape)
    g, d = make_gen(args.latent), make_disc()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g.train()
    d.train()
    full = len(train) // args.batch
    print(mnist.machine_line(args.threads), flush=True)
    print(f"torch {torch.__version__}  {name}  batch {args.batch}  steps/epoch {full}  "
          f"G params {sum(p.numel() for p in g.parameters())}  "
          f"D params {sum(p.numel() for p in d.parameters())}", flush=True)

    def batches(limit):
        perm = torch.randperm(len(train), generator=gen_perm)
        for s in range(min(limit, full)):
            yield train[perm[s * args.batch:(s + 1) * args.batch]]

    for real in batches(args.warmup):
        step(g, d, opt_g, opt_d, real, args.latent)
    per_epoch = []
    for epoch in range(1, args.epochs + 1):
        limit = full if args.steps is None else min(args.steps, full)
        sums, n = np.zeros(2), 0
        t0 = time.perf_counter()
        for real in batches(limit):
            sums += step(g, d, opt_g, opt_d, real, args.latent)
            n += 1
        sec = time.perf_counter() - t0
        est = sec * full / n
        per_epoch.append(est)
        how = "measured" if n == full else f"extrapolated from {n} steps ({sec:.3f} s)"
        print(f"epoch {epoch}  steps {n}  d_loss {sums[0] / n:.4f}  g_loss {sums[1] / n:.4f}  "
              f"seconds/epoch {est:.3f} ({how})", flush=True)
    print(f"seconds/epoch median {float(np.median(per_epoch)):.3f}  min {min(per_epoch):.3f}  "
          f"threads {args.threads}", flush=True)
