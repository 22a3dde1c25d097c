#!/usr/bin/env bash
# Build libpitaya's C core (unmodified, with its own CMakeLists.txt) and link
# tests/clients/libpitaya/driver.c against it.
#
#   tests/clients/libpitaya/build.sh LIBPITAYA_SOURCE OUTPUT_DIR
#
# LIBPITAYA_SOURCE is a checkout of https://github.com/topfreegames/libpitaya (tested: v4.6.3,
# commit d957405d). OUTPUT_DIR/pitaya_driver is written; tests/clients/test_libpitaya.py runs
# it. libpitaya builds its vendored libuv 1.44.2 and zlib; OpenSSL is Debian's (libssl-dev)
# instead of the prebuilt 1.1.1 archives it keeps per platform under deps/openssl, given to
# its CMake through its own PITAYA_OPENSSL_DIR option. Debug build (its assertions stay in:
# the driver installs their handler as its Unity SDK does). Needs cmake, a C compiler,
# libssl-dev.
set -euo pipefail

src=${1:?usage: build.sh LIBPITAYA_SOURCE OUTPUT_DIR}
out=${2:?usage: build.sh LIBPITAYA_SOURCE OUTPUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}

command -v cmake >/dev/null || { echo "build.sh: cmake not found (apt-get install cmake)" >&2; exit 1; }
if [ ! -f "$src/include/pitaya.h" ] || [ ! -f "$src/CMakeLists.txt" ]; then
  echo "build.sh: $src is not a libpitaya checkout (no include/pitaya.h, CMakeLists.txt)" >&2
  exit 1
fi
ssl=$("$CC" -print-file-name=libssl.a)
crypto=$("$CC" -print-file-name=libcrypto.a)
if [ ! -f "$ssl" ] || [ ! -f "$crypto" ] \
  || ! echo "#include <openssl/ssl.h>" | "$CC" -E -x c - >/dev/null 2>&1; then
  echo "build.sh: OpenSSL's static libraries or headers not found (apt-get install libssl-dev)" >&2
  exit 1
fi
include=$(echo "#include <openssl/ssl.h>" | "$CC" -E -x c - | sed -n 's|^# [0-9]* "\(.*\)/openssl/ssl.h".*|\1|p' | head -1)

# PITAYA_OPENSSL_DIR/linux/{include,lib} is the layout its CMakeLists.txt expects.
mkdir -p "$out/openssl/linux/lib"
ln -sfn "$include" "$out/openssl/linux/include"
ln -sf "$ssl" "$out/openssl/linux/lib/libssl.a"
ln -sf "$crypto" "$out/openssl/linux/lib/libcrypto.a"

cmake -S "$src" -B "$out/cmake" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$CC" \
  -DPITAYA_OPENSSL_DIR="$(cd "$out/openssl" && pwd)" >"$out/cmake.log"
cmake --build "$out/cmake" --target pitaya uv_a zlibstatic -j "${JOBS:-2}" >>"$out/cmake.log"
"$CC" -O1 -g -Wall -I"$src/include" -o "$out/pitaya_driver" "$here/driver.c" \
  "$out/cmake/libpitaya-linux.a" "$out/cmake/deps/libuv-1.44.2/libuv_a.a" \
  "$out/cmake/deps/zlib/libz.a" "$ssl" "$crypto" -lpthread -ldl -lm
git -C "$src" rev-parse HEAD >"$out/libpitaya.commit" 2>/dev/null || echo unknown >"$out/libpitaya.commit"
echo "build.sh: $out/pitaya_driver (libpitaya $(cat "$out/libpitaya.commit"), log in $out/cmake.log)"
