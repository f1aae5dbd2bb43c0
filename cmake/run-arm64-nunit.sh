#!/usr/bin/env bash
# Runs the NUnit kernel tests (tests/OnnxStream.Tests/Kernels) as arm64 code under qemu-user:
# publishes tests/OnnxStream.Arm64Runner self-contained for linux-arm64 into build/arm64-nunit, with
# the arm64 natives from artifacts/native/linux-arm64 beside it, and runs it with
# qemu-aarch64-static -L /usr/aarch64-linux-gnu. Writes NUnit3 XML to
# artifacts/test-results/arm64/TestResult.xml and exits non-zero when a test fails.
#
#   cmake/run-arm64-nunit.sh [runner options]   e.g. --filter "FullyQualifiedName~Convolution"
#                                               or --list-tests (see --help)
#
# Needs ./build.sh --rid linux-arm64 first (the arm64 natives), the .NET SDK, qemu-user-static and
# the arm64 loader and libc in /usr/aarch64-linux-gnu (libc6-arm64-cross, which
# gcc-aarch64-linux-gnu pulls in).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PUBLISH=$ROOT/build/arm64-nunit
RESULTS=$ROOT/artifacts/test-results/arm64
NATIVE=$ROOT/artifacts/native/linux-arm64
QEMU_PREFIX=/usr/aarch64-linux-gnu

die() { printf 'run-arm64-nunit.sh: %s\n' "$*" >&2; exit 1; }

# ELF e_machine (bytes 18-19, little-endian): 183 is AArch64.
is_aarch64_elf() { [ "$(od -An -tu2 -j18 -N2 "$1" | tr -d ' ')" = 183 ]; }

[ -f "$NATIVE/libonnxstream_native.so" ] || die "$NATIVE lacks the arm64 natives: run ./build.sh --rid linux-arm64 first"
command -v qemu-aarch64-static >/dev/null || die "qemu-aarch64-static not found (apt-get install qemu-user-static)"
[ -e "$QEMU_PREFIX/lib/ld-linux-aarch64.so.1" ] || die "$QEMU_PREFIX/lib/ld-linux-aarch64.so.1 missing (apt-get install libc6-arm64-cross)"
command -v dotnet >/dev/null || die "dotnet not found"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 TESTINGPLATFORM_TELEMETRY_OPTOUT=1

start=$(date +%s)
echo "== publish tests/OnnxStream.Arm64Runner (linux-arm64, self-contained) -> ${PUBLISH#"$ROOT"/}"
rm -rf "$PUBLISH"
dotnet publish tests/OnnxStream.Arm64Runner -c Release -r linux-arm64 --self-contained -o "$PUBLISH" -nologo -v quiet
for f in libonnxstream_native.so libXNNPACK.so.0 libpthreadpool.so.0 libcpuinfo.so.0 OnnxStream.Tests; do
  [ -f "$PUBLISH/$f" ] || die "$PUBLISH/$f missing after publish"
  is_aarch64_elf "$PUBLISH/$f" || die "$PUBLISH/$f is not an AArch64 ELF"
done
published=$(date +%s)

echo "== NUnit kernel tests under qemu-aarch64-static"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
# EnableWriteXorExecute=0: with W^X the JIT writes code through a second mapping, which qemu-user
# does not see as a code change; it runs stale translations (NullReferenceExceptions in reflection
# stubs). No ICU in the arm64 prefix: invariant globalization. The hard heap limit (256 MiB) keeps the
# GC from reserving its default range, a little faster under qemu. The natives sit beside the
# executable (RUNPATH $ORIGIN), so no LD_LIBRARY_PATH is needed.
set +e
DOTNET_EnableWriteXorExecute=0 \
DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 \
DOTNET_GCHeapHardLimit=0x10000000 \
  timeout 900 qemu-aarch64-static -L "$QEMU_PREFIX" "$PUBLISH/OnnxStream.Tests" \
    --no-progress --no-ansi \
    --results-directory "$RESULTS" \
    --settings "$ROOT/tests/OnnxStream.Arm64Runner/arm64.runsettings" \
    "$@"
rc=$?
set -e
finished=$(date +%s)

summary=$RESULTS/TestResult.xml
if [ -f "$summary" ]; then
  attr() { grep -o -m1 "<test-run [^>]*" "$summary" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  printf 'arm64-nunit: %s passed, %s failed, %s skipped\n' "$(attr passed)" "$(attr failed)" "$(attr skipped)"
  echo "NUnit3 XML: ${summary#"$ROOT"/}"
fi
echo "arm64 NUnit: publish $((published - start)) s, tests under qemu $((finished - published)) s, total $((finished - start)) s"
[ "$rc" -eq 0 ] || echo "arm64 NUnit tests failed (runner exit code $rc)" >&2
exit "$rc"
