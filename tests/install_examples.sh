#!/usr/bin/env bash
# Installs zcluster from BUILD_DIR to a temporary prefix and builds two of
# examples/ as a user would, against the installed package only:
#   messages.c with `cc $(pkg-config --cflags --libs zcluster)`, and again
#     with libzcluster.a (what `pkg-config --static` cannot do: see below);
#   every example with CMake's find_package(zcluster) (examples/CMakeLists.txt);
# then runs them against a redis-server this script starts.
# With ZC_SANITIZE=ON the installed library carries the sanitizers' runtime
# references, so the programs are built with the same flags.
set -euo pipefail
build=$1
src=${ZC_SOURCE_DIR:?}
tmp=$(mktemp -d /tmp/zc-install-XXXXXX)
redis_pid=
cleanup() {
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
prefix=$tmp/prefix
libdir=$(dirname "$(find "$prefix" -name zcluster.pc -path '*/pkgconfig/*')")/..
export PKG_CONFIG_PATH=$libdir/pkgconfig
export LD_LIBRARY_PATH=$libdir
flags=()
[ "${ZC_SANITIZE:-OFF}" = ON ] && flags=(-fsanitize=address,undefined)

echo "-- pkg-config: $(pkg-config --cflags --libs zcluster)"
cc -std=c11 -Wall -Werror "${flags[@]}" -o "$tmp/messages" "$src/examples/messages.c" \
    $(pkg-config --cflags --libs zcluster) -pthread || fail "pkg-config build"

# `pkg-config --static` cannot be used as is on Debian: libzmq3-dev pulls in
# libnorm-dev, whose norm.pc lists the bare file name libprotokit.a (not
# shipped) in Libs.private, and krb5 (under libzmq's gssapi) ships no static
# libraries. What works: libzcluster.a, with its dependencies shared.
pkg-config --static --libs libzmq | grep -q libprotokit.a &&
    echo "-- pkg-config --static: libzmq's norm.pc still lists libprotokit.a"
echo "-- libzcluster.a with shared dependencies"
cc -std=c11 -Wall -Werror "${flags[@]}" -o "$tmp/messages-static" "$src/examples/messages.c" \
    $(pkg-config --cflags zcluster) "$libdir/libzcluster.a" \
    $(pkg-config --libs libczmq libzmq msgpack hiredis jansson libmicrohttpd) -pthread ||
    fail "build with libzcluster.a"
ldd "$tmp/messages-static" | grep -q libzcluster && fail "messages-static still loads libzcluster.so"

echo "-- find_package(zcluster)"
cmake -S "$src/examples" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="${flags[*]}" >/dev/null || fail "find_package configure"
cmake --build "$tmp/build" -j2 >/dev/null || fail "find_package build"

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no \
    --daemonize no >/dev/null &
redis_pid=$!
for _ in $(seq 100); do [ -S "$tmp/redis.sock" ] && break; sleep 0.1; done
export ZC_REDIS_URL=unix://$tmp/redis.sock
for program in "$tmp/messages" "$tmp/messages-static" "$tmp/build/rpc" "$tmp/build/cache" \
    "$tmp/build/queue"; do
    echo "-- run $(basename "$program")"
    timeout 60 "$program" || fail "$program"
done
echo "install_examples: passed"
