#!/usr/bin/env bash
# Membership across hosts, with real network namespaces as the hosts.
#
# Three hosts (h1, h2, h3) of two nodes each, and Redis on a fourth (r), all
# on one bridge with addresses from 10.77.0.0/24 (on these links only).
# Each node binds its host's address, so every message crosses a link.
#   - the six form one cluster; public, group, private and RPC work across
#     hosts;
#   - a host's link set down: both its nodes are removed on every other
#     node within 3 s; set up again: they rejoin every view (RUNS times in a
#     row, default 20: all, not most);
#   - a one-way cut (a blackhole route on h1 toward h2 only, Redis still
#     reachable): nobody is removed, the cut pairs report each other
#     unreachable, a private message and an RPC between them fail at once
#     (an RPC already in flight as soon as the cut is seen); deleting the
#     route clears the report.
# With ZC_MEMBERSHIP_FIGURES=1 it also times SIGKILL and SIGSTOP of a node
# 10 times each (the figures of docs/REGISTRY.md).
#
# Needs root and iproute2. Run as root it fails, saying why, when the
# namespaces cannot be made (CI runs as root); run by hand as another user
# it is skipped, saying so. Every namespace, link and process it made is
# removed on exit, failed or not.
#
# usage: test_membership_netns.sh   (zcluster from $ZC_CLI)
set -uo pipefail
RUNS=${ZC_NETNS_RUNS:-20}
CLI=${ZC_CLI:?ZC_CLI names the zcluster binary}
if [ "$(id -u)" != 0 ]; then
    echo "SKIPPED: test_membership_netns needs root (network namespaces); not run" >&2
    exit 0
fi
if ! command -v ip >/dev/null || ! command -v redis-server >/dev/null; then
    echo "FAIL: test_membership_netns needs iproute2 (ip) and redis-server" >&2
    exit 1
fi

tag=zcm$$ # names of this run's namespaces and links: never another run's
dir=$(mktemp -d /tmp/zc-netns-XXXXXX)
hosts=(r h1 h2 h3)
declare -A addr=([r]=10.77.0.10 [h1]=10.77.0.1 [h2]=10.77.0.2 [h3]=10.77.0.3)
declare -A fd pid
nodes=(h1a h1b h2a h2b h3a h3b)
failures=0
passes=0

cleanup() {
    # A node leaves when its stdin closes; what is still there after 3 s is killed.
    [ -n "${pid[redis]:-}" ] && kill -TERM "${pid[redis]}" 2>/dev/null
    for id in "${!fd[@]}"; do eval "exec ${fd[$id]}>&-"; done
    for _ in $(seq 30); do
        alive=0
        for id in "${!pid[@]}"; do kill -0 "${pid[$id]}" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for id in "${!pid[@]}"; do { kill -KILL "${pid[$id]}" && wait "${pid[$id]}"; } 2>/dev/null; done
    # Whatever else runs in this run's namespaces was started here too.
    for h in "${hosts[@]}"; do
        for p in $(ip netns pids "$tag-$h" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    done
    wait 2>/dev/null
    for h in "${hosts[@]}"; do
        ip link del "$tag-$h" 2>/dev/null # the veth pair, at once (the kernel may take its time)
        ip netns del "$tag-$h" 2>/dev/null
    done
    ip link del "$tag-br" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

check() { # check WHAT CONDITION...: counts and prints failures
    local what=$1
    shift
    if "$@"; then
        passes=$((passes + 1))
    else
        failures=$((failures + 1))
        echo "FAIL: $what" >&2
    fi
}
now_ms() { date +%s%3N; }
ns() { ip netns exec "$tag-$1" "${@:2}"; }

# --- the hosts ------------------------------------------------------------
make_hosts() {
    ip link add "$tag-br" type bridge || return 1
    ip link set "$tag-br" up || return 1
    for h in "${hosts[@]}"; do
        ip netns add "$tag-$h" || return 1
        ip link add "$tag-$h" type veth peer name eth0 netns "$tag-$h" || return 1
        ip link set "$tag-$h" master "$tag-br" up || return 1
        ns "$h" ip addr add "${addr[$h]}/24" dev eth0 || return 1
        ns "$h" ip link set eth0 up || return 1
        ns "$h" ip link set lo up || return 1
    done
}
if ! make_hosts; then
    echo "FAIL: cannot create network namespaces, veth pairs and a bridge as root" \
        "(a container without CAP_NET_ADMIN?)" >&2
    exit 1
fi

# --- Redis and the nodes ----------------------------------------------------
ip netns exec "$tag-r" redis-server --bind "${addr[r]}" --port 6379 --protected-mode no --save '' \
    --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pid[redis]=$!
for _ in $(seq 100); do
    ns r redis-cli -h "${addr[r]}" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis() { ns r redis-cli -h "${addr[r]}" "$@"; }

start_node() { # start_node ID: on host h<digit> of its id
    local id=$1 host=${1:0:2}
    mkfifo "$dir/$id.in"
    ip netns exec "$tag-$host" "$CLI" node --id "$id" --redis "redis://${addr[r]}:6379" --cluster ns \
        --bind "${addr[$host]}" --group g --heartbeat-interval 1000 --heartbeat-timeout 3000 \
        <"$dir/$id.in" >"$dir/$id.out" 2>"$dir/$id.err" &
    pid[$id]=$!
    exec {fd[$id]}>"$dir/$id.in"
}
send() { echo "${*:2}" >&"${fd[$1]}"; }
count() { grep -c -- "^$2" "$dir/$1.out" 2>/dev/null; } # count ID PREFIX
wait_count() {                                       # wait_count ID PREFIX N MS
    local until=$(($(now_ms) + $4))
    while [ "$(count "$1" "$2")" -lt "$3" ]; do
        [ "$(now_ms)" -ge "$until" ] && return 1
        sleep 0.02
    done
}
view() { # view ID: how many nodes (itself included) its `info` lists
    local before
    before=$(count "$1" "ok info ")
    send "$1" info
    wait_count "$1" "ok info " $((before + 1)) 5000 || {
        echo 0
        return
    }
    grep "^ok info " "$dir/$1.out" | tail -1 | grep -o '"pub":' | wc -l
}
full_views() { # every node sees all six, within MS
    local until=$(($(now_ms) + $1)) id
    for id in "${nodes[@]}"; do
        while [ "$(view "$id")" != 6 ]; do
            [ "$(now_ms)" -ge "$until" ] && return 1
            sleep 0.1
        done
    done
}

for id in "${nodes[@]}"; do start_node "$id"; done
for id in "${nodes[@]}"; do
    check "$id is ready" wait_count "$id" "ready " 1 10000
done

echo "-- 3 hosts x 2 nodes form one cluster"
check "every node sees all six" full_views 15000
check "six members in Redis" test "$(redis scard 'zc:{ns}:nodes')" = 6

echo "-- public, group, private and RPC across hosts"
send h1a publish hello from-h1
for id in h1b h2a h2b h3a h3b; do
    check "$id got h1a's public message" wait_count "$id" "msg public h1a - hello" 1 5000
done
send h2a shout g news from-h2
for id in h1a h1b h2b h3a h3b; do
    check "$id got h2a's group message" wait_count "$id" "msg group h2a g news" 1 5000
done
send h1a whisper h3b note private
check "h3b got h1a's private message" wait_count h3b "msg private h1a - note" 1 5000
send h3a call t1 h1b echo 3000 across
check "RPC h3a -> h1b answered" wait_count h3a "result t1 status=ok" 1 5000

echo "-- a host's link down: removed everywhere within 3 s; up: rejoins ($RUNS runs)"
removal_times=()
for run in $(seq "$RUNS"); do
    declare -A base=()
    for id in h1a h1b h2a h2b; do
        base[$id.a]=$(count "$id" "removed h3a")
        base[$id.b]=$(count "$id" "removed h3b")
    done
    t0=$(now_ms)
    ns h3 ip link set eth0 down
    worst=0 ok=1
    for id in h1a h1b h2a h2b; do
        wait_count "$id" "removed h3a" $((base[$id.a] + 1)) 6000 &&
            wait_count "$id" "removed h3b" $((base[$id.b] + 1)) 6000 || ok=0
        t=$(($(now_ms) - t0))
        [ "$t" -gt "$worst" ] && worst=$t
    done
    removal_times+=("$worst")
    check "run $run: h3's nodes removed on every other node" test "$ok" = 1
    check "run $run: within 3 s (took $worst ms)" test "$worst" -le 3000
    ns h3 ip link set eth0 up
    check "run $run: h3's nodes rejoin every view" full_views 20000
done
echo "measured: link down -> removed on all others, ms: ${removal_times[*]}"

echo "-- one-way cut: a blackhole route on h1 toward h2 only"
for id in "${nodes[@]}"; do base[$id]=$(count "$id" "removed "); done
send h1a call t0 h2a sleep 30000 20000 # in flight across the cut: 20 s of work, 30 s timeout
sleep 0.3
ns h1 ip route add blackhole "${addr[h2]}/32"
for pair in "h1a h2a" "h1a h2b" "h1b h2a" "h2a h1a" "h2b h1b"; do
    set -- $pair
    check "$1 reports $2 unreachable" wait_count "$1" "unreachable $2" 1 15000
done
check "the RPC in flight h1a -> h2a fails when h2a turns unreachable, not at its timeout" \
    wait_count h1a "result t0 status=peer gone" 1 5000
sleep 4 # past the lease TTL and a heartbeat timeout more: any removal would show
for id in "${nodes[@]}"; do
    check "nobody removed on $id" test "$(count "$id" "removed ")" = "${base[$id]}"
done
check "six members in Redis during the cut" test "$(redis scard 'zc:{ns}:nodes')" = 6
t0=$(now_ms)
send h1a whisper h2a note blocked
check "a private message h1a -> h2a fails at once" \
    wait_count h1a "error whisper: peer h2a is unreachable" 1 1000
send h1a call t2 h2a echo 5000 blocked
check "an RPC h1a -> h2a fails at once" wait_count h1a "result t2 status=no route" 1 1000
echo "measured: fail-fast whisper + RPC answered in $(($(now_ms) - t0)) ms"
send h3a whisper h2a note open
check "h3 -> h2 still works" wait_count h2a "msg private h3a - note " 1 5000
ns h1 ip route del blackhole "${addr[h2]}/32"
for pair in "h1a h2a" "h1a h2b" "h2a h1a" "h2b h1b"; do
    set -- $pair
    check "$1 reports $2 reachable again" wait_count "$1" "reachable $2" 1 15000
done
b=$(count h2a "msg private h1a - note ")
send h1a whisper h2a note healed
check "h1a -> h2a works again" wait_count h2a "msg private h1a - note " $((b + 1)) 5000
check "every view whole after the cut" full_views 10000

if [ "${ZC_MEMBERSHIP_FIGURES:-}" = 1 ]; then
    echo "-- figures: SIGKILL and SIGSTOP of h2b, 10 runs each"
    kills=() freezes=()
    for run in $(seq 10); do
        b=$(count h1a "removed h2b")
        t0=$(now_ms)
        kill -KILL "${pid[h2b]}"
        wait_count h1a "removed h2b" $((b + 1)) 5000 && kills+=($(($(now_ms) - t0)))
        { wait "${pid[h2b]}"; } 2>/dev/null
        exec {fd[h2b]}>&-
        rm -f "$dir/h2b.in"
        start_node h2b
        full_views 15000
    done
    for run in $(seq 10); do
        b=$(count h1a "removed h2b")
        t0=$(now_ms)
        kill -STOP "${pid[h2b]}"
        wait_count h1a "removed h2b" $((b + 1)) 8000 && freezes+=($(($(now_ms) - t0)))
        kill -CONT "${pid[h2b]}"
        full_views 15000
    done
    echo "measured: SIGKILL -> removed on h1a, ms: ${kills[*]}"
    echo "measured: SIGSTOP -> removed on h1a, ms: ${freezes[*]}"
fi

echo "$passes passed, $failures failed"
[ "$failures" = 0 ]
