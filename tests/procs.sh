#!/usr/bin/env bash
# No process started by the test suite may outlive it.
#
# Every test runs as `procs.sh run BUILD_DIR TEST`, which execs TEST with
# ZC_TEST_RUN=<run>:<BUILD_DIR> in its environment, so every process the test
# starts, and theirs, carries that marker. <run> names the ctest process
# (pid.starttime, ctest being the parent of every test), so each ctest run has
# its own. Two ctest fixtures bracket the suite:
#   procs.sh before BUILD_DIR  kills what earlier runs in BUILD_DIR left behind
#                              (marked by a ctest that is gone) and notes it;
#   procs.sh after BUILD_DIR   fails listing (pid, command line) every process
#                              of this run still alive after a 2 s grace, and
#                              kills it; fails too if `before` found any.
set -uo pipefail
mode=$1 build=$2
shift 2

#  The start time of a process, which with its pid names it for good.
start_of() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra fields <<<"${stat##*) }" # from field 3 on: starttime is field 22
    echo "${fields[19]}"
}

run="$PPID.$(start_of $PPID)"
notes="$build/procs-before.txt"

#  Prints "pid run" for every process carrying a marker of this build dir.
marked() {
    grep -zsH '^ZC_TEST_RUN=' /proc/[0-9]*/environ | tr '\0' '\n' |
        while IFS= read -r line; do
            local pid=${line#/proc/} value=${line#*:ZC_TEST_RUN=}
            [ "${value#*:}" = "$build" ] && echo "${pid%%/*} ${value%%:*}"
        done
}

describe() {
    echo "  pid $1: $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)"
}

case $mode in
run)
    ZC_TEST_RUN="$run:$build" exec "$@"
    ;;
before)
    : >"$notes"
    marked | while read -r pid owner; do
        [ "$(start_of "${owner%.*}")" = "${owner#*.}" ] && continue # its ctest still runs
        describe "$pid" | tee -a "$notes" >&2
        kill -KILL "$pid" 2>/dev/null
    done
    [ -s "$notes" ] && echo "killed the above, left by an earlier test run" >&2
    exit 0
    ;;
after)
    failed=0
    if [ -s "$notes" ]; then
        echo "processes left by an earlier test run (killed before this run):" >&2
        cat "$notes" >&2
        failed=1
    fi
    rm -f "$notes"
    ours() { marked | while read -r pid owner; do [ "$owner" = "$run" ] && echo "$pid"; done; }
    for _ in $(seq 20); do
        [ -z "$(ours)" ] && exit $failed
        sleep 0.1
    done
    echo "processes started by this test run outlived it (now killed):" >&2
    for pid in $(ours); do
        describe "$pid" >&2
        kill -KILL "$pid" 2>/dev/null
    done
    exit 1
    ;;
*)
    echo "usage: procs.sh run|before|after BUILD_DIR [TEST...]" >&2
    exit 2
    ;;
esac
