"""MLP GAN as in `tinygen train gan`, timed per epoch (or per N steps, extrapolated).

G: 100-256-512-1024-784, each hidden Linear followed by BatchNorm1d and LeakyReLU(0.2), tanh
output. D: 784-512-256-1 with LeakyReLU(0.2), logits. Training step: see gan_common.py.

Setup (once):  python3 -m venv ENV && ENV/bin/pip install torch numpy
Run:           ENV/bin/python tools/bench/torch_gan.py --data /path/to/mnist --threads 1
               (--steps 200 times 200 steps and extrapolates to the 937-step epoch)
"""

from torch import nn

import gan_common


def make_gen(latent):
    layers, prev = [], latent
    for h in (256, 512, 1024):
        layers += [nn.Linear(prev, h), nn.BatchNorm1d(h), nn.LeakyReLU(0.2)]
        prev = h
    layers += [nn.Linear(prev, 784), nn.Tanh()]
    return nn.Sequential(*layers)


def make_disc():
    return nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2),
                         nn.Linear(512, 256), nn.LeakyReLU(0.2),
                         nn.Linear(256, 1))


if __name__ == "__main__":
    gan_common.run("MLP GAN G 100-256-512-1024-784 (BN), D 784-512-256-1", make_gen, make_disc,
                   (784,), __doc__)
