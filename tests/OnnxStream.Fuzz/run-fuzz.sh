#!/usr/bin/env bash
# Long fuzz runs of the readers of user files (model.txt, .onnx, .npy, the tokenizer's files, range_data.txt).
#
#   run-fuzz.sh TARGET|all [INPUTS] [OPTIONS]   the in-process mutator: the seeds, then INPUTS (default 10000) mutated
#                                               inputs per target, under a memory cap; OPTIONS: --seed N, --no-shared,
#                                               --shared DIR, --findings DIR (default build/fuzz/findings),
#                                               --time-limit-s N, --max-alloc-mb N
#   run-fuzz.sh afl TARGET [AFL-FUZZ OPTIONS]   AFL++ on SharpFuzz-instrumented assemblies (needs afl-fuzz from the
#                                               afl++ package and the sharpfuzz tool: see README.md here)
#   run-fuzz.sh repro TARGET FILE...            run saved inputs once each and say what they did
#
# Targets: modeltxt onnx npy tokenizer rangedata. ../shared's small fixtures join the seeds when present.
# Memory cap: FUZZ_MEMORY_MB (default 4096) of address space (ulimit -v) and FUZZ_HEAP_MB (default 1024) of GC heap
# (DOTNET_GCHeapHardLimit; without it the runtime reserves more address space than the cap).
# Exit status: 0 when nothing was found, 1 when something was (each distinct input is saved under the findings folder).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/build/fuzz
MEMORY_MB=${FUZZ_MEMORY_MB:-4096}
HEAP_MB=${FUZZ_HEAP_MB:-1024}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

die() { printf 'run-fuzz.sh: %s\n' "$*" >&2; exit 2; }
[ $# -ge 1 ] || { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

capped() { # COMMAND...: runs it under the memory cap
  (
    ulimit -v $((MEMORY_MB * 1024))
    DOTNET_GCHeapHardLimit=$(printf '0x%x' $((HEAP_MB << 20))) exec "$@"
  )
}

case "$1" in
  afl)
    [ $# -ge 2 ] || die "afl needs a target"
    target=$2; shift 2
    command -v afl-fuzz >/dev/null || die "afl-fuzz not found (apt-get install afl++)"
    command -v sharpfuzz >/dev/null || die "sharpfuzz not found (dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0; PATH+=:~/.dotnet/tools)"
    bin=$OUT/afl-bin
    dir=$OUT/afl-$target
    # The seeds and the working files come from the build that is not instrumented (instrumented code crashes outside
    # SharpFuzz's loop).
    dotnet build tests/OnnxStream.Fuzz -c Release -nologo -v quiet >/dev/null
    rm -rf "$dir/in" "$dir/work"
    dotnet tests/OnnxStream.Fuzz/bin/Release/net10.0/OnnxStream.Fuzz.dll seeds "$target" "$dir"
    echo "== publish tests/OnnxStream.Fuzz -> ${bin#"$ROOT"/}, instrument the readers' assemblies"
    rm -rf "$bin"
    dotnet publish tests/OnnxStream.Fuzz -c Release -o "$bin" -nologo -v quiet
    # Only the code under test is instrumented (the coverage AFL steers by); the driver and the BCL are not.
    for dll in OnnxStream.dll OnnxStream.StableDiffusion.dll; do sharpfuzz "$bin/$dll"; done
    echo "== afl-fuzz (findings in ${dir#"$ROOT"/}/out; Ctrl-C stops)"
    # -t: per-input time limit in ms (the .NET start is paid once, SharpFuzz keeps the process); -m none: the .NET
    # runtime reserves far more address space than afl's default limit, so the cap is ulimit's (capped) instead.
    AFL_SKIP_BIN_CHECK=1 capped afl-fuzz -i "$dir/in" -o "$dir/out" -t 10000 -m none "$@" \
      -- dotnet "$bin/OnnxStream.Fuzz.dll" afl "$target" "$dir/work"
    ;;
  repro)
    [ $# -ge 3 ] || die "repro needs a target and files"
    dotnet build tests/OnnxStream.Fuzz -c Release -nologo -v quiet >/dev/null
    capped dotnet tests/OnnxStream.Fuzz/bin/Release/net10.0/OnnxStream.Fuzz.dll "$@"
    ;;
  *)
    target=$1; shift
    inputs=10000
    if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then inputs=$1; shift; fi
    dotnet build tests/OnnxStream.Fuzz -c Release -nologo -v quiet >/dev/null
    echo "== $target: $inputs inputs per target, memory cap ${MEMORY_MB} MiB address space (ulimit -v), ${HEAP_MB} MiB GC heap"
    capped dotnet tests/OnnxStream.Fuzz/bin/Release/net10.0/OnnxStream.Fuzz.dll run "$target" "$inputs" --findings "$OUT/findings" "$@"
    ;;
esac
