#!/usr/bin/env bash
# One-command set-up, build and test of OnnxStream for .NET on Debian/Ubuntu.
#
#   ./build.sh                      install missing apt packages, build the native library (Release)
#                                   and the .NET solution, publish the CLI to artifacts/bin/onnxstream
#                                   (Native AOT on x64, framework-dependent elsewhere)
#   ./build.sh test                 all of the above, then every test: bindings freshness, native
#                                   self-test, NUnit (including pack-and-consume), arm64 cross-build
#                                   and its self-test under qemu
#   ./build.sh --rid linux-arm64    cross-build and stage the arm64 native library
#   ./build.sh pack                 build both RIDs and write the NuGet package to artifacts/packages
#   ./build.sh bindings             regenerate bindings/generated/NativeMethods.g.cs from the header
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
CONFIGURATION=Release
ARTIFACTS=$ROOT/artifacts

# clang and zlib1g-dev also link the Native AOT CLI.
APT_PACKAGES=(cmake clang zlib1g-dev libxnnpack-dev libpthreadpool-dev patchelf libonnx-dev)
APT_PACKAGES_ARM64=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)

log() { printf '\n== %s\n' "$*"; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

ensure_apt_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: install them by hand"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_dotnet() {
  command -v dotnet >/dev/null || die "the .NET 10 SDK is needed (dotnet not on PATH): see https://learn.microsoft.com/dotnet/core/install/linux-debian"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

# Builds the shim for a RID and stages it with its XNNPACK, pthreadpool and cpuinfo in artifacts/native/RID.
build_native() {
  local rid=$1 build=$ROOT/build/native-$1 extra=()
  if [ "$rid" = linux-arm64 ]; then
    ensure_apt_packages "${APT_PACKAGES_ARM64[@]}"
    bash cmake/fetch-arm64-sysroot.sh "$ROOT/build/sysroot-arm64"
    extra=(-DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/toolchains/aarch64-linux-gnu.cmake" -DOSN_ARM64_SYSROOT="$ROOT/build/sysroot-arm64")
  fi
  log "native library ($rid)"
  cmake -S native -B "$build" -DCMAKE_BUILD_TYPE=$CONFIGURATION "${extra[@]}" >/dev/null
  cmake --build "$build" -j "$(nproc)"
  rm -rf "$ARTIFACTS/native/$rid"
  cmake --install "$build" --prefix "$ARTIFACTS/native/$rid" >/dev/null
}

generate_bindings() {
  dotnet run -c $CONFIGURATION --project bindings/OnnxStream.Bindings.Generator -- \
    native/include/onnxstream_native.h bindings/generated/NativeMethods.g.cs "$@"
}

build_all() {
  ensure_apt_packages "${APT_PACKAGES[@]}"
  ensure_dotnet
  build_native linux-x64
  log ".NET solution"
  dotnet build OnnxStream.sln -c $CONFIGURATION -nologo -v quiet
  publish_cli
}

# Native AOT on x64 (no JIT, no runtime to map: a smaller resident set); framework-dependent on other hosts. Native AOT
# fixes the instruction set at build time: x86-64-v3 (AVX2, FMA, F16C) gives the managed vector code (TensorPrimitives,
# float16 conversion of every streamed weight) 256-bit registers; AOT_INSTRUCTION_SET=x86-64 builds for any x86-64 CPU.
AOT_INSTRUCTION_SET=${AOT_INSTRUCTION_SET:-x86-64-v3}
publish_cli() {
  rm -rf "$ARTIFACTS/bin"
  if [ "$(uname -m)" = x86_64 ]; then
    log "CLI (Native AOT, linux-x64, $AOT_INSTRUCTION_SET) -> artifacts/bin/onnxstream"
    dotnet publish src/OnnxStream.Cli -c $CONFIGURATION -r linux-x64 -p:PublishAot=true -p:IlcInstructionSet="$AOT_INSTRUCTION_SET" \
      -o "$ARTIFACTS/bin" -nologo -v quiet
  else
    log "CLI -> artifacts/bin/onnxstream"
    dotnet publish src/OnnxStream.Cli -c $CONFIGURATION -o "$ARTIFACTS/bin" -nologo -v quiet --no-build
  fi
}

run_tests() {
  build_all
  log "bindings are up to date"
  generate_bindings --check
  log "native self-test (linux-x64)"
  ctest --test-dir "$ROOT/build/native-linux-x64" --output-on-failure
  build_native linux-arm64
  log "native self-test (linux-arm64, under qemu-user)"
  ctest --test-dir "$ROOT/build/native-linux-arm64" --output-on-failure
  log "NUnit tests"
  rm -rf "$ARTIFACTS/test-results"
  dotnet test OnnxStream.sln -c $CONFIGURATION --no-build -nologo \
    --logger "trx;LogFileName=results.trx" --results-directory "$ARTIFACTS/test-results"
  log "NUnit kernel tests (linux-arm64, under qemu-user)"
  bash cmake/run-arm64-nunit.sh
}

case "${1:-}" in
  "") build_all ;;
  test) run_tests ;;
  --rid)
    [ -n "${2:-}" ] || die "--rid needs linux-x64 or linux-arm64"
    case "$2" in linux-x64|linux-arm64) ;; *) die "unknown RID '$2' (linux-x64, linux-arm64)" ;; esac
    ensure_apt_packages "${APT_PACKAGES[@]}"
    build_native "$2" ;;
  pack)
    build_all
    build_native linux-arm64
    log "NuGet package -> artifacts/packages"
    dotnet pack src/OnnxStream -c $CONFIGURATION -o "$ARTIFACTS/packages" -nologo -v quiet ;;
  bindings) ensure_dotnet; generate_bindings ;;
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (see ./build.sh --help)" ;;
esac
