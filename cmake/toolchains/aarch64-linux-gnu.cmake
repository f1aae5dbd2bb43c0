# Cross-builds for Linux arm64 with Debian's aarch64-linux-gnu-gcc.
#
#   cmake/fetch-arm64-sysroot.sh build/sysroot-arm64
#   cmake -S native -B build/native-linux-arm64 -DCMAKE_BUILD_TYPE=Release \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DOSN_ARM64_SYSROOT=$PWD/build/sysroot-arm64
#
# OSN_ARM64_SYSROOT holds only the unpacked arm64 XNNPACK/pthreadpool/cpuinfo .debs; libc and
# the rest come from the cross compiler's own /usr/aarch64-linux-gnu, so CMAKE_SYSROOT stays unset.
#
# Running arm64 binaries: qemu-aarch64-static -L /usr/aarch64-linux-gnu (or QEMU_LD_PREFIX) finds
# the arm64 loader and libc; libcpuinfo.so.0, which libXNNPACK.so.0 needs, is only in the sysroot,
# so LD_LIBRARY_PATH must include <sysroot>/usr/lib/aarch64-linux-gnu. qemu-user passes the
# environment through; the emulator below sets it for the guest with -E, so ctest works too.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(OSN_ARM64_SYSROOT "" CACHE PATH "Unpacked arm64 .debs (see cmake/fetch-arm64-sysroot.sh)")
# try_compile projects re-read this file without the cache; hand the variable on.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES OSN_ARM64_SYSROOT)
if(NOT OSN_ARM64_SYSROOT OR NOT EXISTS "${OSN_ARM64_SYSROOT}/usr/include/xnnpack.h")
  message(FATAL_ERROR "OSN_ARM64_SYSROOT='${OSN_ARM64_SYSROOT}' lacks usr/include/xnnpack.h; "
    "run cmake/fetch-arm64-sysroot.sh DIR and pass -DOSN_ARM64_SYSROOT=DIR (absolute)")
endif()
set(_osn_arm64_libdir "${OSN_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu")

set(CMAKE_FIND_ROOT_PATH "${OSN_ARM64_SYSROOT}" /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# libXNNPACK.so.0 needs libpthreadpool.so.0 and libcpuinfo.so.0, which the linker must find too.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_osn_arm64_libdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_osn_arm64_libdir}")

set(CMAKE_CROSSCOMPILING_EMULATOR
  qemu-aarch64-static -L /usr/aarch64-linux-gnu -E "LD_LIBRARY_PATH=${_osn_arm64_libdir}")
