#!/usr/bin/env bash
# zcluster top in a real terminal (tmux): two nodes exchange messages (one
# publishes ~50 a second, the other answers RPC pings), top is started in a
# tmux pane, the pane is captured until both nodes and a non-zero message
# rate appear, then q is pressed and top must exit 0; Ctrl-C likewise. The last capture is
# printed (the README's screen comes from it).
set -euo pipefail
cli=${ZC_CLI:?}
tmp=$(mktemp -d /tmp/zc-top-XXXXXX)
sock=zc-top-$$
pids=()
cleanup() {
    tmux -L "$sock" kill-server 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/screen" ] && cat "$tmp/screen" >&2; exit 1; }

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no \
    --daemonize no >/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/redis.sock" ] && break; sleep 0.1; done
export ZC_REDIS_URL=unix://$tmp/redis.sock ZC_CLUSTER=topdemo

# A node that publishes a message every 20 ms for as long as the test runs,
# and one that only listens; both in group "web".
mkfifo "$tmp/talker.in"
"$cli" node --id talker --group web <"$tmp/talker.in" >/dev/null &
pids+=($!)
exec 3>"$tmp/talker.in"
mkfifo "$tmp/listener.in"
"$cli" node --id listener --group web <"$tmp/listener.in" >/dev/null &
pids+=($!)
exec 4>"$tmp/listener.in"
(while true; do echo "publish tick hello" >&3 || exit 0; sleep 0.02; done) &
pids+=($!)
(n=0; while true; do n=$((n + 1)); echo "call c$n talker echo 1000 hi" >&4 || exit 0; sleep 0.1; done) &
pids+=($!)
# Three jobs waiting on queue "default" (a worker that drains nothing).
printf 'enqueue default noop\nenqueue default noop\nenqueue default noop\n' |
    "$cli" worker --id filler --concurrency 0 >/dev/null

tmux -L "$sock" new-session -d -x 120 -y 30 -s top \
    "$cli top; echo \"top exit=\$?\" > $tmp/exit; sleep 30"
ok=0
for _ in $(seq 100); do
    tmux -L "$sock" capture-pane -p -t top >"$tmp/screen"
    # both nodes, and the listener receiving a non-zero rate
    if grep -q '^talker ' "$tmp/screen" && grep -qE '^listener .* web +[1-9][0-9]* ' "$tmp/screen" &&
        grep -qE '^listener .* [1-9][0-9]* +[0-9]+\.[0-9]+$' "$tmp/screen"; then
        ok=1
        break
    fi
    sleep 0.2
done
[ $ok = 1 ] || fail "nodes and rates did not appear"
grep -qE 'leader (talker|listener) \(epoch [0-9]+\)' "$tmp/screen" || fail "no leader"
grep -q 'GROUPS: web (2)' "$tmp/screen" || fail "no groups"
grep -qE '^default +3 ' "$tmp/screen" || fail "no queue depth"
tmux -L "$sock" send-keys -t top q
for _ in $(seq 50); do [ -s "$tmp/exit" ] && break; sleep 0.1; done
[ "$(cat "$tmp/exit" 2>/dev/null)" = "top exit=0" ] || fail "top did not exit 0 on q: $(cat "$tmp/exit" 2>/dev/null)"
# Ctrl-C quits too, with 0.
tmux -L "$sock" new-session -d -x 120 -y 30 -s top2 \
    "$cli top; echo \"top exit=\$?\" > $tmp/exit2; sleep 30"
for _ in $(seq 50); do
    tmux -L "$sock" capture-pane -p -t top2 | grep -q '^talker ' && break
    sleep 0.1
done
tmux -L "$sock" send-keys -t top2 C-c
for _ in $(seq 50); do [ -s "$tmp/exit2" ] && break; sleep 0.1; done
[ "$(cat "$tmp/exit2" 2>/dev/null)" = "top exit=0" ] || fail "top did not exit 0 on Ctrl-C"
echo "top_tmux: captured screen:"
cat "$tmp/screen"
echo "top_tmux: passed"
