"""DCGAN as in `tinygen train dcgan`, timed per epoch (or per N steps, extrapolated).

G: Linear(100, 7*7*64, no bias) -> BatchNorm1d -> ReLU -> reshape 64x7x7
   -> ConvTranspose2d(64, 32, 4, stride 2, pad 1, no bias) -> BatchNorm2d -> ReLU
   -> ConvTranspose2d(32, 1, 4, stride 2, pad 1) -> tanh                      (1x28x28)
D: Conv2d(1, 32, 4, 2, 1) -> LeakyReLU(0.2) -> Conv2d(32, 64, 4, 2, 1, no bias) -> BatchNorm2d
   -> LeakyReLU(0.2) -> flatten -> Linear(3136, 1)
Weights N(0, 0.02), BatchNorm scales N(1, 0.02) (the DCGAN init). Training step: gan_common.py.

Setup (once):  python3 -m venv ENV && ENV/bin/pip install torch numpy
Run:           ENV/bin/python tools/bench/torch_dcgan.py --data /path/to/mnist --threads 1
               (--steps 200 times 200 steps and extrapolates to the 937-step epoch)
"""

from torch import nn

import gan_common

C = 32


def init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def make_gen(latent):
    g = nn.Sequential(
        nn.Linear(latent, 2 * C * 7 * 7, bias=False), nn.BatchNorm1d(2 * C * 7 * 7), nn.ReLU(),
        nn.Unflatten(1, (2 * C, 7, 7)),
        nn.ConvTranspose2d(2 * C, C, 4, 2, 1, bias=False), nn.BatchNorm2d(C), nn.ReLU(),
        nn.ConvTranspose2d(C, 1, 4, 2, 1), nn.Tanh())
    g.apply(init)
    return g


def make_disc():
    d = nn.Sequential(
        nn.Conv2d(1, C, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(C, 2 * C, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * C), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * C * 7 * 7, 1))
    d.apply(init)
    return d


if __name__ == "__main__":
    gan_common.run("DCGAN G Dense->7x7x64->ConvT 32->ConvT 1, D Conv 32->Conv 64->Dense",
                   make_gen, make_disc, (1, 28, 28), __doc__)
