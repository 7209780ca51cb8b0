#!/usr/bin/env python3
"""latent_scatter.py — the codes of a data set, projected to 2-D, one colour per class.

Takes the codes a trainer wrote (`PROG encode --data X --weights W -o codes.npy`)
and the data set's labels (IDX, plain or .gz, as MNIST's and Fashion-MNIST's
`*-labels-idx1-ubyte.gz`, or .npy); projects the codes onto their first two
principal components (PCA of the codes; a 2-number code is drawn as it is) and
draws a scatter plot with matplotlib, one colour per label, as PNG.

    ./mnist_conv encode --data t10k-images-idx3-ubyte.gz -w mnist_conv.safetensors -o codes.npy
    examples/latent_scatter.py codes.npy t10k-labels-idx1-ubyte.gz -o latent.png

Needs python3-numpy and python3-matplotlib (Debian packages).
"""
import argparse
import gzip
import sys

import numpy as np

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]


def load_labels(path):
    if path.endswith(".npy"):
        return np.load(path).astype(np.int64).ravel()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != 1:
        sys.exit(f"latent_scatter: {path}: not an IDX1 ubyte label file")
    n = int.from_bytes(raw[4:8], "big")
    labels = np.frombuffer(raw, np.uint8, count=n, offset=8)
    return labels.astype(np.int64)


def project(codes):
    """The codes on their first two principal components, and the variance each explains."""
    codes = codes.reshape(len(codes), -1).astype(np.float64)
    if codes.shape[1] <= 2:
        return codes, None
    centred = codes - codes.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    explained = s ** 2 / np.sum(s ** 2)
    return centred @ vt[:2].T, explained[:2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("codes", help="codes.npy from the trainer's encode")
    ap.add_argument("labels", help="labels: IDX (.gz) or .npy, one per code")
    ap.add_argument("-o", "--out", default="latent.png", help="the PNG to write (default latent.png)")
    ap.add_argument("--names", choices=["fashion", "numbers"], default=None,
                    help="the legend: Fashion-MNIST's class names (the default for labels 0..9) "
                         "or the label numbers (MNIST digits, anything else)")
    ap.add_argument("--title", default=None)
    args = ap.parse_args()

    codes = np.load(args.codes)
    labels = load_labels(args.labels)
    if len(labels) < len(codes):
        sys.exit(f"latent_scatter: {len(codes)} codes but only {len(labels)} labels")
    labels = labels[:len(codes)]
    xy, explained = project(codes)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = np.unique(labels)
    names = args.names or ("fashion" if len(classes) <= 10 and classes.max() < 10 else "numbers")
    fig, ax = plt.subplots(figsize=(8, 6.5), dpi=120)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        name = FASHION[c] if names == "fashion" and 0 <= c < 10 else str(c)
        ax.scatter(xy[sel, 0], xy[sel, 1] if xy.shape[1] > 1 else np.zeros(sel.sum()), s=4, alpha=0.6,
                   color=cmap(i % cmap.N), label=name, linewidths=0)
    if explained is not None:
        ax.set_xlabel(f"PC 1 ({100 * explained[0]:.1f} % of the code's variance)")
        ax.set_ylabel(f"PC 2 ({100 * explained[1]:.1f} %)")
    else:
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    dim = int(np.prod(codes.shape[1:])) if codes.ndim > 1 else 1
    ax.set_title(args.title or f"{len(codes)} codes of {dim} numbers, projected to 2-D")
    ax.legend(markerscale=4, fontsize=8, loc="best", framealpha=0.8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}: {len(codes)} codes, {len(classes)} classes", file=sys.stderr)


if __name__ == "__main__":
    main()
