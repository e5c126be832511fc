"""MNIST from gzip IDX files with numpy only (no torchvision, no download).

Shared by torch_vae.py, torch_gan.py and torch_dcgan.py.
"""

import gzip
import os
import struct
import time

import numpy as np


def read_idx(path):
    """Reads one IDX file (optionally .gz) into a numpy array of its stored dtype (uint8)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(folder, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}[.gz] not found in {folder}")


def load(folder):
    """Returns (train, test) as float32 arrays (n, 784) in [0, 1]."""
    tr = read_idx(_find(folder, "train-images-idx3-ubyte"))
    te = read_idx(_find(folder, "t10k-images-idx3-ubyte"))
    return (tr.reshape(len(tr), -1).astype(np.float32) / 255.0,
            te.reshape(len(te), -1).astype(np.float32) / 255.0)


def machine_line(threads):
    """One line naming the CPU, the load average and the thread count, for the logs."""
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load1, load5, load15 = os.getloadavg()
    return (f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  cpu {cpu}  threads {threads}  "
            f"load {load1:.2f} {load5:.2f} {load15:.2f}")
