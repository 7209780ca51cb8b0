#!/usr/bin/env python3
"""torch_conv.py — the PyTorch reference for bench/bench_conv.c.

The seed's convolutional autoencoder, specs/mnist_conv.ae, as nn.Sequential:
Conv2d(1,64,3,p=1), Conv2d(64,128,3,p=1), BatchNorm2d, ReLU, MaxPool2d(2),
Conv2d(128,256,3,p=1), BatchNorm2d, ReLU, MaxPool2d(2), Conv2d(256,1,1),
Flatten, Dropout(0.2), Linear(49,49) | Linear(49,49), Linear(49,784),
Unflatten, Conv2d(1,64,3,p=1), Conv2d(64,1,1); RMSE loss (sqrt of the mean
squared error), Adam lr=1e-3, batch 256, training mode. The images are held
in one float32 tensor and cut into contiguous slices (no DataLoader). Times
STEPS steps after one warm-up step, and the batch-1 encode latency under
inference_mode (eval mode), median of 100 calls. The same two settings as
torch_ref.py (malloc keeps freed memory; OMP_WAIT_POLICY=passive).
Prints one JSON line. Usage: torch_conv.py THREADS [STEPS [train-images-idx3-ubyte.gz]]
"""
import ctypes
import gzip
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # read when torch loads libgomp

import numpy as np
import torch
from torch import nn

BATCH, ENCODE_CALLS = 256, 100
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def keep_freed_memory():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(-1, 32 << 20) == 1 and libc.mallopt(-3, 32 << 20) == 1
    except (OSError, AttributeError):
        return False


def load_idx(path, want):
    with gzip.open(path, "rb") as f:
        raw = f.read(16 + want * 784)
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(want, 1, 28, 28)
    return torch.from_numpy(x.astype(np.float32) / 255.0)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    malloc_tuned = keep_freed_memory()
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    data = load_idx(sys.argv[3] if len(sys.argv) > 3 else DEFAULT_DATA, (steps + 1) * BATCH)

    encoder = nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(128, 256, 3, padding=1), nn.BatchNorm2d(256), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(256, 1, 1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(49, 49))
    decoder = nn.Sequential(
        nn.Linear(49, 49), nn.Linear(49, 784), nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 64, 3, padding=1),
        nn.Conv2d(64, 1, 1))
    model = nn.Sequential(encoder, decoder)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("num_batches_tracked"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = torch.sqrt(nn.functional.mse_loss(model(x), x))
        loss.backward()
        opt.step()
        return loss

    model.train()
    step(data[:BATCH])  # warm-up
    total = 0.0
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        total += step(data[s * BATCH:(s + 1) * BATCH]).item()
    secs = time.perf_counter() - t0

    model.eval()
    lat = []
    with torch.inference_mode():
        for _ in range(10):
            encoder(data[:1])
        for i in range(ENCODE_CALLS):
            x = data[i:i + 1]
            t = time.perf_counter()
            encoder(x)
            lat.append(time.perf_counter() - t)

    print(json.dumps({
        "impl": "pytorch", "model": "mnist_conv", "threads": torch.get_num_threads(), "torch": torch.__version__,
        "params": params + buffers, "trainable": params, "batch": BATCH, "steps": steps,
        "seconds": round(secs, 3), "samples_per_s": round(steps * BATCH / secs, 2),
        "mean_loss": round(total / steps, 6), "encode_us": round(1e6 * statistics.median(lat), 1),
        "mkldnn": torch.backends.mkldnn.is_available(), "malloc_tuned": malloc_tuned}))


if __name__ == "__main__":
    main()
