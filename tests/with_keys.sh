#!/usr/bin/env bash
# Runs test programs with the cluster's credentials on: makes a key file
# (zcluster keygen, $ZC_CLI), exports ZC_KEYS, runs each TEST in turn and
# fails if any fails, or if any node said it runs unauthenticated (which
# would mean the credentials were not taken up). ctest runs the multi-node
# tests this way once (test_secure_multinode).
set -uo pipefail
dir=$(mktemp -d /tmp/zc-with-keys-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$ZC_CLI" keygen -o "$dir/cluster.keys" >/dev/null || exit 1
export ZC_KEYS=$dir/cluster.keys
failed=0
for test in "$@"; do
    echo "== $(basename "$test") with ZC_KEYS"
    "$test" 2> >(tee "$dir/stderr" >&2) || failed=1
    wait # for tee
    if grep -q "not authenticated" "$dir/stderr"; then
        echo "$(basename "$test"): a node ran unauthenticated with ZC_KEYS set" >&2
        failed=1
    fi
done
exit $failed
