#!/usr/bin/env python3
"""torch_ref.py — the PyTorch reference for bench/bench_aec.c.

The same model as specs/fmnist_dense.ae (784-512-128-32-128-512-784, ReLU
inside, sigmoid output), MSE loss (mean), Adam lr=1e-3, batch 256, on the
Fashion-MNIST training images held in one float32 tensor and cut into
contiguous slices (no DataLoader): PyTorch at its best on a CPU. Measures one
epoch of training (after one warm-up step) 3 times, median samples/s (and per
second of CPU time, which other load disturbs less), and the
batch-1 encode latency under inference_mode, median of 5000 calls.
Two settings PyTorch needs on this kind of machine (neither touches aec, which
allocates nothing per step and starts no OpenMP threads):
- glibc's malloc keeps freed memory (mallopt): otherwise every step's tensors
  come back from the kernel as fresh zeroed pages, which halves PyTorch's
  training speed on a virtual machine;
- OMP_WAIT_POLICY=passive unless set: PyTorch's idle OpenMP threads otherwise
  spin against OpenBLAS's threads, which makes 2 threads slower than 1.
Prints one JSON line. Usage: torch_ref.py THREADS [train-images-idx3-ubyte.gz]
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

BATCH, EPOCHS, ENCODE_CALLS = 256, 3, 5000
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def keep_freed_memory():
    """mallopt(M_TRIM_THRESHOLD, M_MMAP_THRESHOLD) to 32 MiB; False if not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(-1, 32 << 20) == 1 and libc.mallopt(-3, 32 << 20) == 1
    except (OSError, AttributeError):
        return False


def load_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, rows, cols)
    return torch.from_numpy(x.astype(np.float32) / 255.0)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    malloc_tuned = keep_freed_memory()
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    data = load_idx(sys.argv[2] if len(sys.argv) > 2 else DEFAULT_DATA)
    n = data.shape[0]

    encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 128), nn.ReLU(),
                            nn.Linear(128, 32))
    decoder = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, 784),
                            nn.Sigmoid())
    model = nn.Sequential(encoder, decoder)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), x.flatten(1))
        loss.backward()
        opt.step()
        return loss

    step(data[:BATCH])  # warm-up
    epoch_s, cpu_s = [], []
    for _ in range(EPOCHS):
        total = 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, n, BATCH):
            x = data[i:i + BATCH]
            total += step(x).item() * x.shape[0]
        epoch_s.append(time.perf_counter() - t0)
        cpu_s.append(time.process_time() - c0)

    lat = []
    with torch.inference_mode():
        for _ in range(200):
            encoder(data[:1])
        for i in range(ENCODE_CALLS):
            x = data[i % n:i % n + 1]
            t0 = time.perf_counter()
            encoder(x)
            lat.append(time.perf_counter() - t0)

    print(json.dumps({
        "impl": "pytorch", "threads": torch.get_num_threads(), "torch": torch.__version__,
        "malloc_tuned": malloc_tuned, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "samples": n, "batch": BATCH, "epoch_s": [round(t, 4) for t in epoch_s],
        "samples_per_s": round(statistics.median(n / t for t in epoch_s), 1),
        "samples_per_cpu_s": round(statistics.median(n / t for t in cpu_s), 1),
        "last_epoch_loss": round(total / n, 6), "encode_us": round(1e6 * statistics.median(lat), 2)}))


if __name__ == "__main__":
    main()
