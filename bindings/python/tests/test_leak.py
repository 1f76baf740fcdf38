"""No leak: a million messages through Python handlers, and 22,000 RPC calls
both ways, leave the process's RSS flat.

ZC_PY_LEAK_MESSAGES sets the message count (default 1,000,000)."""
import os

from test_node import hears, run_until

MESSAGES = int(os.environ.get("ZC_PY_LEAK_MESSAGES", "1000000"))
#  Small batches keep the backlog queued in libzmq (memory that is not a
#  leak, and that the allocator may keep) small whatever the machine's load.
BATCH = 10_000


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

    hears(node, c)
    flood(MESSAGES // 10)  # warm up: buffers, caches, allocator arenas
    calls(2000)
    samples = [rss_kib()]
    for step in range(1, 10):  # the other nine tenths, RSS after each
        flood(MESSAGES // 10 * (step + 1))
        calls(2000)
        samples.append(rss_kib())
    assert received[0] == MESSAGES
    assert node.stats()["lost"] == 0
    # flat: a leak of even 8 bytes a message would grow it by 7 MiB
    assert max(samples) - samples[0] < 4096, f"RSS (KiB) after each 100,000: {samples}"
    print(f"RSS (KiB) after each tenth of {MESSAGES} messages and 2,200 calls: {samples}")
