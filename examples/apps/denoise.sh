#!/usr/bin/env bash
# Denoising: a denoising autoencoder (specs/denoising.ae, trained on images
# with half their pixels masked) cleans up masked, gaussian and
# salt-and-pepper test images; prints the PSNR before and after, and draws
# clean / noisy / denoised rows.
source "$(dirname "$0")/common.sh"
"$B"/aec build specs/denoising.ae -o "$OUT/denoising"
"$OUT/denoising" train --data "$DATA/train-images-idx3-ubyte.gz" --out "$OUT/denoising.safetensors" --quiet
for noise in mask=0.5 gaussian=0.3 saltpepper=0.2; do
    "$OUT/denoising" denoise --data "$DATA/t10k-images-idx3-ubyte.gz" --weights "$OUT/denoising.safetensors" \
        --noise $noise --png "$OUT/denoise_${noise%%=*}.png" --quiet
done
