#!/usr/bin/env python3
"""Writes the PyTorch-exported ONNX fixtures of the importer's tests.

usage: tools/import-fixtures.py [DIR]      (default: export/tests/fixtures)

Two generators as people build them in PyTorch, exported by PyTorch's own ONNX exporter
(`torch.onnx.export`, the TorchScript-based exporter, opset 17), each with a few latents and
PyTorch's outputs for them:

* `vae_decoder`: the decoder of pytorch/examples' VAE (`fc3`, ReLU, `fc4`, sigmoid) at a smaller
  hidden width (128 instead of 400, to keep the file small), latent 20, output 784.
* `dcgan_generator`: Linear -> nn.Unflatten to 32x7x7 -> BatchNorm2d -> LeakyReLU(0.2) ->
  ConvTranspose2d 32->16 (k4 s2 p1) -> BatchNorm2d -> LeakyReLU(0.2) -> ConvTranspose2d 16->1
  (k4 s2 p1) -> Tanh, latent 16, output 1x28x28. Its BatchNorm layers carry non-trivial running
  statistics and affine parameters (eval mode), so folding them is tested.

Weights are seeded random (the exporter's forms are the point, not image quality). Per model:
`NAME.onnx`, `NAME.latents.pb` and `NAME.outputs.pb` (ONNX TensorProto, float32, batch first).
The tests read them with no Python installed. Needs torch and onnx.
"""
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

OPSET = 17
LATENTS = 4


class VaeDecoder(nn.Module):
    def __init__(self, latent=20, hidden=128, out=784):
        super().__init__()
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, out)

    def forward(self, z):
        return torch.sigmoid(self.fc4(torch.relu(self.fc3(z))))


def dcgan_generator(latent=16, c=32):
    return nn.Sequential(
        nn.Linear(latent, c * 7 * 7),
        nn.Unflatten(1, (c, 7, 7)),
        nn.BatchNorm2d(c),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(c // 2),
        nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(c // 2, 1, 4, 2, 1),
        nn.Tanh(),
    )


def randomize_batchnorm(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.3 * torch.randn(n, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            m.weight.data.copy_(1.0 + 0.2 * torch.randn(n, generator=gen))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=gen))


def write(dir_, name, model, latent):
    model.eval()
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(LATENTS, latent, generator=gen)
    with torch.no_grad():
        y = model(z)
    path = os.path.join(dir_, f"{name}.onnx")
    torch.onnx.export(
        model,
        (z[:1],),
        path,
        input_names=["z"],
        output_names=["x"],
        dynamic_axes={"z": {0: "batch"}, "x": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(path))
    for what, t in [("latents", z), ("outputs", y)]:
        tensor = numpy_helper.from_array(t.numpy().astype(np.float32), name=what)
        with open(os.path.join(dir_, f"{name}.{what}.pb"), "wb") as f:
            f.write(tensor.SerializeToString())
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: {os.path.getsize(path)} bytes, ops {', '.join(ops)}")


def main():
    dir_ = sys.argv[1] if len(sys.argv) > 1 else "export/tests/fixtures"
    os.makedirs(dir_, exist_ok=True)
    torch.manual_seed(1)
    write(dir_, "vae_decoder", VaeDecoder(), 20)
    g = dcgan_generator()
    randomize_batchnorm(g, torch.Generator().manual_seed(3))
    write(dir_, "dcgan_generator", g, 16)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}")


if __name__ == "__main__":
    main()
