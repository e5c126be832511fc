"""The pytorch/examples VAE recipe (784-400-20, Adam 1e-3, batch 128, Bernoulli), timed per epoch.

Same model and batch as `tinygen train vae`: fc1 784-400 ReLU, fc21/fc22 400-20 (mean, log
variance), fc3 20-400 ReLU, fc4 400-784 sigmoid; loss = BCE summed over pixels + KL, summed
over the batch, as in the reference script. Data are copied into tensors before timing, so the
timed loop has no data loading: it only indexes a shuffled permutation of an in-memory tensor.

Setup (once):  python3 -m venv ENV && ENV/bin/pip install torch numpy
Run:           ENV/bin/python tools/bench/torch_vae.py --data /path/to/mnist --threads 1
               (--epochs 10 for the reference loss curve; --timed-epochs N for timing only)
"""

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import mnist


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train_steps(model, opt, train, batch, gen, max_steps=None):
    """One pass over a fresh permutation (or its first max_steps batches); returns (steps, sum)."""
    model.train()
    perm = torch.randperm(len(train), generator=gen)
    total, steps = 0.0, 0
    for i in range(0, len(train), batch):
        if max_steps is not None and steps >= max_steps:
            break
        x = train[perm[i:i + batch]]
        opt.zero_grad()
        recon, mu, logvar = model(x)
        loss = loss_function(recon, x, mu, logvar)
        loss.backward()
        opt.step()
        total += loss.item()
        steps += 1
    return steps, total


def test_loss(model, test):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(test), 128):
            x = test[i:i + 128]
            recon, mu, logvar = model(x)
            total += loss_function(recon, x, mu, logvar).item()
    return total / len(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1, help="epochs to train (test loss after each)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed warm-up steps first")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    tr, te = mnist.load(args.data)
    train, test = torch.from_numpy(tr), torch.from_numpy(te)
    model = VAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    print(mnist.machine_line(args.threads), flush=True)
    print(f"torch {torch.__version__}  VAE 784-400-20  batch {args.batch}  "
          f"train {len(train)}  test {len(test)}", flush=True)
    if args.warmup:
        train_steps(model, opt, train, args.batch, gen, max_steps=args.warmup)
    times = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        steps, total = train_steps(model, opt, train, args.batch, gen)
        sec = time.perf_counter() - t0
        times.append(sec)
        print(f"epoch {epoch}  steps {steps}  train_loss {total / len(train):.4f}  "
              f"test_loss {test_loss(model, test):.4f}  seconds {sec:.3f}", flush=True)
    print(f"seconds/epoch median {float(np.median(times)):.3f}  min {min(times):.3f}  "
          f"threads {args.threads}", flush=True)


if __name__ == "__main__":
    main()
