# Finds the pinned XNNPACK (upstream commit ae108ef, 2022-02-16) and pthreadpool, and checks that
# the XNNPACK found is that commit. Defines:
#   XNNPACK::XNNPACK, pthreadpool::pthreadpool   imported targets to link against
#   OSN_XNNPACK_COMMIT                           the short commit, compiled into the shim
#   OSN_BUNDLED_RUNTIME_LIBRARIES                shared libraries to ship beside the shim
#
# Order: a system copy (Debian/Ubuntu libxnnpack-dev 0.0~git20220216.ae108ef, or a sysroot when
# cross-compiling); else, with OSN_XNNPACK_FROM_SOURCE=ON (default where no system copy can exist,
# Windows and macOS), the same commit built from source with FetchContent.

set(OSN_XNNPACK_COMMIT "ae108ef")
set(OSN_XNNPACK_COMMIT_FULL "ae108ef49aa5623b896fc93d4298c49d1750d9ba")
# SHA-256 of include/xnnpack.h at that commit. The header is what the shim compiles against, so it
# is what identifies the commit, for a distro package, a sysroot and a source build alike.
set(OSN_XNNPACK_HEADER_SHA256 "985cd667cebb9d59967a655d98270c7097f61070b54fc4b8f30260dab50c6b8a")

if(WIN32 OR APPLE)
  set(_osn_from_source_default ON)
else()
  set(_osn_from_source_default OFF)
endif()
option(OSN_XNNPACK_FROM_SOURCE "Build XNNPACK ${OSN_XNNPACK_COMMIT} from source instead of using a system package" ${_osn_from_source_default})

function(osn_verify_xnnpack_header header)
  file(SHA256 "${header}" _sha)
  if(NOT _sha STREQUAL OSN_XNNPACK_HEADER_SHA256)
    message(FATAL_ERROR
      "XNNPACK at ${header} is not the pinned commit ${OSN_XNNPACK_COMMIT} (header SHA-256 ${_sha}, "
      "expected ${OSN_XNNPACK_HEADER_SHA256}). On Debian/Ubuntu install libxnnpack-dev "
      "0.0~git20220216.ae108ef; elsewhere configure with -DOSN_XNNPACK_FROM_SOURCE=ON.")
  endif()
  message(STATUS "XNNPACK: ${header} is commit ${OSN_XNNPACK_COMMIT}")
endfunction()

if(NOT OSN_XNNPACK_FROM_SOURCE)
  find_path(XNNPACK_INCLUDE_DIR xnnpack.h)
  find_path(PTHREADPOOL_INCLUDE_DIR pthreadpool.h)
  find_library(XNNPACK_LIBRARY NAMES XNNPACK)
  find_library(PTHREADPOOL_LIBRARY NAMES pthreadpool)
  # cpuinfo has no -dev package in Debian; only its runtime library is needed (to ship it).
  find_library(CPUINFO_RUNTIME_LIBRARY NAMES libcpuinfo.so.0 cpuinfo)
  foreach(_v XNNPACK_INCLUDE_DIR PTHREADPOOL_INCLUDE_DIR XNNPACK_LIBRARY PTHREADPOOL_LIBRARY CPUINFO_RUNTIME_LIBRARY)
    if(NOT ${_v})
      message(FATAL_ERROR
        "XNNPACK ${OSN_XNNPACK_COMMIT} not found (${_v} is missing). On Debian/Ubuntu: "
        "apt-get install libxnnpack-dev libpthreadpool-dev (./build.sh does this); "
        "elsewhere configure with -DOSN_XNNPACK_FROM_SOURCE=ON.")
    endif()
  endforeach()
  osn_verify_xnnpack_header("${XNNPACK_INCLUDE_DIR}/xnnpack.h")

  add_library(XNNPACK::XNNPACK SHARED IMPORTED)
  set_target_properties(XNNPACK::XNNPACK PROPERTIES
    IMPORTED_LOCATION "${XNNPACK_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${XNNPACK_INCLUDE_DIR}")
  add_library(pthreadpool::pthreadpool SHARED IMPORTED)
  set_target_properties(pthreadpool::pthreadpool PROPERTIES
    IMPORTED_LOCATION "${PTHREADPOOL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${PTHREADPOOL_INCLUDE_DIR}")

  # Ship the real files under their sonames (the .so dev links point at them).
  set(OSN_BUNDLED_RUNTIME_LIBRARIES "")
  foreach(_lib "${XNNPACK_LIBRARY}" "${PTHREADPOOL_LIBRARY}" "${CPUINFO_RUNTIME_LIBRARY}")
    get_filename_component(_real "${_lib}" REALPATH)
    list(APPEND OSN_BUNDLED_RUNTIME_LIBRARIES "${_real}")
  endforeach()
else()
  include(FetchContent)
  set(XNNPACK_BUILD_TESTS OFF CACHE BOOL "" FORCE)
  set(XNNPACK_BUILD_BENCHMARKS OFF CACHE BOOL "" FORCE)
  set(XNNPACK_LIBRARY_TYPE "static" CACHE STRING "" FORCE)
  FetchContent_Declare(xnnpack
    GIT_REPOSITORY https://github.com/google/XNNPACK.git
    GIT_TAG ${OSN_XNNPACK_COMMIT_FULL})
  FetchContent_MakeAvailable(xnnpack)
  osn_verify_xnnpack_header("${xnnpack_SOURCE_DIR}/include/xnnpack.h")
  # Built static and linked into the shim: nothing to ship beside it.
  add_library(XNNPACK::XNNPACK ALIAS XNNPACK)
  add_library(pthreadpool::pthreadpool ALIAS pthreadpool)
  set(OSN_BUNDLED_RUNTIME_LIBRARIES "")
endif()
