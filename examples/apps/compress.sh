#!/usr/bin/env bash
# Compression: the test set (10,000 images, 7.8 MB as IDX bytes) as 32
# quantized code values per image, at 8 and 4 bits; prints the ratio and the
# PSNR, and decompresses the 8-bit file into a PNG.
source "$(dirname "$0")/common.sh"
"$B"/aec build specs/fmnist_dense.ae -o "$OUT/fmnist_dense"
[ -s "$OUT/fmnist_dense.safetensors" ] ||
    "$OUT/fmnist_dense" train --data "$DATA/train-images-idx3-ubyte.gz" --out "$OUT/fmnist_dense.safetensors" --quiet
for bits in 8 4; do
    "$OUT/fmnist_dense" compress --data "$DATA/t10k-images-idx3-ubyte.gz" \
        --weights "$OUT/fmnist_dense.safetensors" -o "$OUT/test_$bits.aez" --bits $bits
done
"$OUT/fmnist_dense" decompress "$OUT/test_8.aez" --weights "$OUT/fmnist_dense.safetensors" \
    -o "$OUT/test_decompressed.npy" --png "$OUT/test_decompressed.png"
