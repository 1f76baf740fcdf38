#!/usr/bin/env bash
# Idle cost of a cluster on one host: starts a private redis-server and N
# `zcluster node` processes, lets them settle, then measures for SECONDS s
# the CPU the nodes use (sum of utime+stime, % of one core), Redis's own
# CPU, and the commands Redis runs per second (client commands, and all
# commands including those inside scripts, from INFO commandstats).
# usage: tests/idle_cost.sh ZCLUSTER-BINARY N [SECONDS] [extra node options...]
# Not a ctest test: a measuring tool for docs/REGISTRY.md.
set -euo pipefail
bin=$1 n=$2 secs=${3:-10}
shift 2; [ $# -gt 0 ] && shift
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no \
    --dir "$dir" >"$dir/redis.log" 2>&1 &
redis_pid=$!
cli() { redis-cli -s "$dir/redis.sock" "$@"; }
for _ in $(seq 50); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
mkfifo "$dir/in"
exec 3<>"$dir/in" # keeps every node's stdin open
for i in $(seq "$n"); do
    "$bin" node --id "idle-$i" --redis "unix://$dir/redis.sock" --cluster idle "$@" \
        <"$dir/in" >/dev/null 2>"$dir/node-$i.log" &
    pids+=($!)
done
for _ in $(seq 300); do
    [ "$(cli scard 'zc:{idle}:nodes')" = "$n" ] && break
    sleep 0.1
done
sleep 5 # every node connects to every other
ticks() { # utime+stime of the given pids, in clock ticks
    local t=0
    for p in "$@"; do
        read -r -a f <"/proc/$p/stat"
        t=$((t + f[13] + f[14]))
    done
    echo "$t"
}
total_cmds() { cli info commandstats | awk -F'[=,]' '/^cmdstat_/ {s += $2} END {print s}'; }
hz=$(getconf CLK_TCK)
c0=$(ticks "${pids[@]}") r0=$(ticks "$redis_pid")
p0=$(cli info stats | awk -F: '/^total_commands_processed/ {print $2+0}') a0=$(total_cmds)
sleep "$secs"
c1=$(ticks "${pids[@]}") r1=$(ticks "$redis_pid")
p1=$(cli info stats | awk -F: '/^total_commands_processed/ {print $2+0}') a1=$(total_cmds)
[ -n "${ZC_IDLE_STATS:-}" ] && cli info commandstats | grep -v "^#"
echo "nodes=$n seconds=$secs members=$(cli scard 'zc:{idle}:nodes')" \
    "nodes_cpu=$(((c1 - c0) * 100 / hz / secs))%" "redis_cpu=$(((r1 - r0) * 100 / hz / secs))%" \
    "redis_client_cmds_per_s=$(((p1 - p0) / secs))" "redis_all_cmds_per_s=$(((a1 - a0) / secs))"
