"""No leak: a million messages through Python handlers, and thousands of RPC
calls both ways, leave the process's RSS flat.

ZC_PY_LEAK_MESSAGES sets the message count (default 1,000,000)."""
import os

import zcluster
from test_node import run_until

MESSAGES = int(os.environ.get("ZC_PY_LEAK_MESSAGES", "1000000"))
BATCH = 50_000  # below the sockets' high-water mark (100,000): nothing is dropped


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_million_messages_and_calls_leave_rss_flat(node, env, spawned):
    received = [0]

    def count(msg):
        received[0] += len(msg.data) > 0
    node.on("flood", count)
    node.register("echo", lambda request: request.args)
    c = spawned("c", "--id", "leak-c", env=env)
    run_until(node, lambda: "leak-c" in node.peers())
    c.expect(rf"^added {node.id}$", node=node)

    def flood(count_to):
        while received[0] < count_to:
            batch = min(BATCH, count_to - received[0])
            target = received[0] + batch
            c.command(f"flood public flood {batch} 64", node=node)
            run_until(node, lambda: received[0] >= target, timeout=60)

    def calls(n):
        for i in range(n):
            assert node.call("leak-c", "echo", i) == i
        for i in range(n // 10):
            c.command(f"call t{i} {node.id} echo 5000 x", node=node)
            c.expect(rf"^result t{i} status=ok", node=node)

    flood(MESSAGES // 10)  # warm up: buffers, caches, allocator arenas
    calls(2000)
    before = rss_kib()
    flood(MESSAGES)
    calls(20000)
    after = rss_kib()
    assert received[0] == MESSAGES
    assert node.stats()["lost"] == 0
    # flat: a leak of even 8 bytes a message would show as 7+ MiB here
    assert after - before < 4096, f"RSS grew {after - before} KiB ({before} -> {after})"
    print(f"RSS {before} KiB -> {after} KiB after {MESSAGES} messages and 22000 calls")
