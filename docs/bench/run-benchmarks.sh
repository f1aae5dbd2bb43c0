#!/usr/bin/env bash
# Regenerates the measured part of docs/BENCHMARKS.md: for the full-size SD 1.5 UNet (64×64 latent), VAE decoder
# (512×512) and CLIP-L text encoder, synthesizes the model (seeded random weights, real architecture), converts it
# to a float16-weight model folder, runs `onnxstream bench --engine both`, and writes docs/bench/NAME.{json,md},
# docs/bench-NAME.png, and the tables between the <!-- BEGIN bench:NAME --> / <!-- END bench:NAME --> markers.
#
#   docs/bench/run-benchmarks.sh [unet-rerun] [conv] [unet] [unet-fixed] [vae] [text]      (default: all)
#
# conv runs `onnxstream bench-kernels --conv` (the UNet's convolution shapes, one-node models, against ONNX Runtime)
# into docs/bench/conv.txt and the bench:conv markers.
#
# Environment: BENCH_MODELS (where models go, default /tmp/onnxstream-bench-models; the UNet needs 6.1 GB),
# BENCH_RUNS and BENCH_ROUNDS (override each table's runs and rounds: see bench --rounds), BENCH_THREADS (default 2),
# BENCH_CLEAN=1 (delete each model after measuring it), BENCH_NO_BUILD=1 (use artifacts/bin/onnxstream as it is instead of
# running ./build.sh first). All of it takes about 45 minutes on the 2-core machine.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
models=${BENCH_MODELS:-/tmp/onnxstream-bench-models}
threads=${BENCH_THREADS:-2}
docs="$root/docs"
mkdir -p "$models"

# The published CLI (Native AOT on x86-64): what users run, and what bench runs each configuration's child process with.
[ "${BENCH_NO_BUILD:-0}" = 1 ] || "$root/build.sh"
cli="$root/artifacts/bin/onnxstream"

# prepare ARCH: the fp32 .onnx (ONNX Runtime runs it) and the float16-weight folder converted from it (this engine runs it).
prepare() {
    local arch=$1
    [ -f "$models/$arch/model.onnx" ] || "$cli" synth --arch "$arch" --scale full --latent-size 64 --out "$models/$arch"
    [ -f "$models/$arch-fp16/model.txt" ] || "$cli" convert "$models/$arch/model.onnx" "$models/$arch-fp16" --fp16
}

# splice NAME: replaces the lines between the markers of NAME in BENCHMARKS.md by docs/bench/NAME.md.
splice() {
    local name=$1 doc="$docs/BENCHMARKS.md"
    awk -v begin="<!-- BEGIN bench:$name -->" -v end="<!-- END bench:$name -->" -v table="$docs/bench/$name.md" '
        $0 == begin { print; while ((getline line < table) > 0) print line; skipping = 1; next }
        $0 == end { skipping = 0 }
        !skipping { print }' "$doc" > "$doc.tmp"
    mv "$doc.tmp" "$doc"
}

# bench NAME ARCH TITLE RUNS ROUNDS MODE...: measures ARCH's configurations and publishes them as NAME.
bench() {
    local name=$1 arch=$2 title=$3 runs=$4 rounds=$5
    shift 5
    prepare "$arch"
    echo "== $name: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    "$cli" bench --model "$models/$arch/model.onnx" --onnxstream-model "$models/$arch-fp16" --engine both \
        --runs "${BENCH_RUNS:-$runs}" --rounds "${BENCH_ROUNDS:-$rounds}" --threads "$threads" --trace --title "$title" \
        --json "$docs/bench/$name.json" --chart "$docs/bench-$name.png" --markdown "$docs/bench/$name.md" \
        $(printf -- '--mode %s ' "$@") || echo "warning: a configuration of $name failed (see the table)"
    splice "$name"
    if [ "${BENCH_CLEAN:-0}" = 1 ]; then rm -rf "${models:?}/$arch" "${models:?}/$arch-fp16"; fi
}

for name in ${@:-unet-rerun conv unet unet-fixed vae text}; do
    case $name in
        conv) echo "== conv: load average $(cut -d' ' -f1-3 /proc/loadavg)"
              "$cli" bench-kernels --conv --threads "$threads" --runs 3 | tee "$docs/bench/conv.txt"
              { echo '```text'; cat "$docs/bench/conv.txt"; echo '```'; } > "$docs/bench/conv.md"
              splice conv ;;
        unet-rerun) bench unet-rerun sd15-unet "SD 1.5 UNet, 64x64 latent (best of 2 rounds)" 2 2 \
                  prefetch/fp32/fused ram/fp32/fused ort:default ;;
        unet) bench unet sd15-unet "SD 1.5 UNet, 64x64 latent" 2 1 \
                  prefetch/fp32/fused ort:default ort:lean ram/fp32/fused prefetch/fp16/fused mmap/fp32/fused nocache/fp32/fused ;;
        unet-fixed) bench unet-fixed sd15-unet "SD 1.5 UNet, 64x64 latent, fp16 arithmetic" 2 1 \
                  prefetch/fp32/fused prefetch/fp16/fused ram/fp32/fused ort:default ;;
        vae) bench vae sd15-vae-decoder "SD 1.5 VAE decoder, 512x512" 1 1 \
                  prefetch/fp32/plain prefetch/fp32/sliced prefetch/fp32/fused prefetch/fp16/fused ram/fp32/fused ort:default ort:lean ;;
        text) bench text sd15-text-encoder "SD 1.5 text encoder (CLIP ViT-L/14)" 3 1 \
                  prefetch/fp32/plain ram/fp32/plain ram/fp16/plain mmap/fp32/plain ort:default ort:lean ;;
        *) echo "unknown benchmark '$name': expected unet-rerun, conv, unet, unet-fixed, vae or text" >&2; exit 2 ;;
    esac
done
