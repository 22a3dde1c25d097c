#!/usr/bin/env bash
# Build libpitaya's C core (unmodified) and tests/clients/libpitaya/driver.c into one program.
#
#   tests/clients/libpitaya/build.sh LIBPITAYA_SOURCE OUTPUT_DIR
#
# LIBPITAYA_SOURCE is a checkout of https://github.com/topfreegames/libpitaya (tested: v4.6.3,
# commit d957405d). OUTPUT_DIR/pitaya_driver is written; tests/clients/test_libpitaya.py runs
# it. The library's own sources are compiled as its CMakeLists.txt lists them (`pitaya_sources`),
# against Debian's libuv1-dev, libssl-dev and zlib1g-dev instead of its vendored copies: its
# CMake build links prebuilt static OpenSSL archives (deps/openssl/linux/lib/*.a, 1.1.1, kept
# out of plain clones by Git LFS) and always builds its test suite, which needs a git
# submodule. No NDEBUG: libpitaya's assertions stay in (the driver installs their handler as
# its Unity SDK does).
set -euo pipefail

src=${1:?usage: build.sh LIBPITAYA_SOURCE OUTPUT_DIR}
out=${2:?usage: build.sh LIBPITAYA_SOURCE OUTPUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-cc}

for header in uv.h openssl/ssl.h zlib.h; do
  if ! echo "#include <$header>" | "$CC" -E -x c - >/dev/null 2>&1; then
    echo "build.sh: <$header> not found: install libuv1-dev libssl-dev zlib1g-dev" >&2
    exit 1
  fi
done
if [ ! -f "$src/include/pitaya.h" ] || [ ! -f "$src/src/pc_pitaya.c" ]; then
  echo "build.sh: $src is not a libpitaya checkout (no include/pitaya.h)" >&2
  exit 1
fi

sources=(
  src/pc_assert.c src/pc_JSON.c src/pc_lib.c src/pc_pitaya.c src/pc_trans_repo.c
  src/pc_trans.c src/pc_unity.c src/tr/uv/pr_gzip.c src/tr/uv/pr_msg_json.c src/tr/uv/pr_msg.c
  src/tr/uv/pr_pkg.c src/tr/uv/tr_uv_tcp_aux.c src/tr/uv/tr_uv_tcp_i.c src/tr/uv/tr_uv_tcp.c
  src/tr/uv/tr_uv_tls_aux.c src/tr/uv/tr_uv_tls_i.c src/tr/uv/tr_uv_tls.c src/tr/dummy/tr_dummy.c
)
mkdir -p "$out/obj"
objects=()
for source in "${sources[@]}"; do
  object="$out/obj/$(basename "$source" .c).o"
  "$CC" -c -O1 -g -fPIC -w -I"$src/include" -I"$src/src" "$src/$source" -o "$object"
  objects+=("$object")
done
"$CC" -O1 -g -Wall -Werror -I"$src/include" -o "$out/pitaya_driver" "$here/driver.c" \
  "${objects[@]}" -luv -lssl -lcrypto -lz -lpthread -lm -ldl
git -C "$src" rev-parse HEAD > "$out/libpitaya.commit" 2>/dev/null || echo unknown > "$out/libpitaya.commit"
echo "build.sh: $out/pitaya_driver (libpitaya $(cat "$out/libpitaya.commit"))"
