#!/usr/bin/python3
"""make_seeds.py — writes the data and checkpoint seed corpora (corpus/data,
corpus/ckpt) that fuzz_data.c and fuzz_ckpt.c start from. Run once; the
outputs are checked in. A data seed's first byte selects the file name the
target gives it (see fuzz_data.c's `names`), element type and limit."""
import gzip, io, json, os, struct
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
def put(kind, name, data):
    os.makedirs(os.path.join(here, "corpus", kind), exist_ok=True)
    with open(os.path.join(here, "corpus", kind, name), "wb") as f:
        f.write(data)

def idx(a, code=0x08):
    a = np.asarray(a)
    hdr = struct.pack(">BBBB", 0, 0, code, a.ndim) + b"".join(struct.pack(">I", d) for d in a.shape)
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return hdr + a.astype(dt).tobytes()

def npy(a):
    b = io.BytesIO(); np.save(b, a); return b.getvalue()

img = (np.arange(3 * 4 * 4) % 256).reshape(3, 4, 4)
put("data", "idx_ubyte", bytes([1]) + idx(img))
put("data", "idx_float", bytes([0]) + idx(img / 7.0, 0x0D))
put("data", "idx_labels", bytes([2 | 64]) + idx(np.array([1, 2, 3, 9])))
put("data", "idx_gz", bytes([6]) + gzip.compress(idx(img), mtime=0))
put("data", "npy_f4", bytes([3]) + npy(np.linspace(0, 1, 12, dtype="<f4").reshape(3, 4)))
put("data", "npy_f8_nan", bytes([3 | 16 | 128]) + npy(np.array([[1.0, np.nan], [0.5, 2.0]])))
put("data", "npy_u1_3d", bytes([3]) + npy(img.astype("u1")))
put("data", "npy_gz", bytes([7]) + gzip.compress(npy(np.ones((2, 3), "<f4")), mtime=0))
put("data", "csv_header", bytes([4]) + b"a,b,c\n1,2,3\n4.5,-1e3,nan\n")
put("data", "csv_plain", bytes([0]) + b"0.1 0.2 0.3\n0.4 0.5 0.6\n")
put("data", "tsv", bytes([5]) + b"1\t2\n3\t4\n")
put("data", "csv_gz", bytes([8]) + gzip.compress(b"1,2\n3,4\n", mtime=0))

def safetensors(tensors, meta, dtype="F32"):
    np_dt = {"F32": "<f4", "F64": "<f8"}[dtype]
    header, data = {"__metadata__": meta}, b""
    for name, a in tensors:
        raw = np.asarray(a, np_dt).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(a)), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

w, b = np.arange(12).reshape(4, 3) / 10, np.arange(4) / 10
meta = {"step": "7", "epoch": "1", "batch": "2", "seed": "42", "best_val": "inf",
        "best_epoch": "0", "bad_epochs": "0", "train_samples": "10", "val_samples": "0",
        "train_loss": "0.5", "val_loss": "nan"}
put("ckpt", "weights", safetensors([("encoder.0.weight", w), ("encoder.0.bias", b)], {}))
put("ckpt", "train_f32", safetensors([("encoder.0.weight", w), ("encoder.0.bias", b),
                                      ("optimizer.state", np.zeros(32)), ("train.params", np.ones(16))], meta))
put("ckpt", "train_f64", safetensors([("encoder.0.weight", w), ("encoder.0.bias", b),
                                      ("optimizer.state", np.zeros(32))], meta, "F64"))

# .aez (runtime/aez.c): magic, version, layout hash, n, c, bits, name, ranges, packed codes, CRC-32.
import zlib
def aez(n, c, bits, name=b"fuzz"):
    rng = np.random.default_rng(bits)
    q = rng.integers(0, 2 ** bits, size=n * c)
    bitstr = 0
    for i, v in enumerate(q):
        bitstr |= int(v) << (i * bits)
    packed = bitstr.to_bytes((n * c * bits + 7) // 8, "little")
    ranges = b"".join(struct.pack("<ff", -1.0 - j, 1.0 + j) for j in range(c))
    body = (bytes([0x89]) + b"AEZ\r\n\x1a\n" + struct.pack("<IIqiiH", 1, 0x12345678, n, c, bits, len(name))
            + name + ranges + packed)
    return body + struct.pack("<I", zlib.crc32(body))
put("aez", "bits4", aez(3, 4, 4))
put("aez", "bits8", aez(2, 3, 8))
put("aez", "bits16", aez(2, 2, 16))
put("aez", "bits1", aez(5, 3, 1))
