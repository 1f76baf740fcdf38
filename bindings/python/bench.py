#!/usr/bin/python3
"""The Python binding's overhead: publish rate and RPC round trip from
Python next to the same from C (`zcluster bench`), in the same run.

    /usr/bin/python3 bindings/python/bench.py [--count N] [--calls M] [--json]

Starts its own redis-server and `zcluster node` peers (the binary next to
the library the binding loads, or $ZCLUSTER_BIN). Rows:
  c publish          zcluster bench publish: C node to C node
  py publish         a Python node publishes, a C node receives
  py receive         a C node floods, a Python handler counts
  c rpc              zcluster bench rpc: C to C, sequential calls
  py->c rpc          Python calls a C node's echo
  py->py rpc         Python calls a Python process's echo (a Python method)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "tests"))

import procs  # noqa: E402
import zcluster  # noqa: E402

PAYLOAD = b"x" * 64
RECEIVE_BATCH = 50_000


def c_bench(scenario, count):
    out = subprocess.run([procs.zcluster_binary(), "bench", scenario, "--count", str(count),
                          "--size", "64", "--nodes", "1", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def received_public(c, node):
    """The C node's count of public messages received (its `stats` line)."""
    c.send("stats")
    stats = c.expect(r"^stats ", 30, node).string
    return int(stats.split("recv_public=")[1].split()[0])


def py_publish(node, c, count):
    start = time.perf_counter()
    for _ in range(count):
        node.publish("bench", PAYLOAD)
    sent = time.perf_counter()
    got, progress = 0, time.perf_counter()
    while got < count and time.perf_counter() - progress < 1:  # all in, or none for 1 s
        node.run(0.01)
        now = received_public(c, node)
        if now > got:
            got, progress = now, time.perf_counter()
    end = progress
    return {"send_rate": count / (sent - start), "rate": got / (end - start), "received": got}


def py_receive(node, c, count):
    got = [0]

    def count_one(msg):
        got[0] += 1
    node.on("flood", count_one)
    start = time.perf_counter()
    # in batches below the sockets' high-water mark (100,000): a C sender
    # outruns Python, and PUB/SUB drops what overflows a subscriber's queue
    for sent in range(0, count, RECEIVE_BATCH):
        batch = min(RECEIVE_BATCH, count - sent)
        c.send(f"flood public flood {batch} 64")
        node.run(timeout=30, until=lambda: got[0] >= sent + batch)
    return {"rate": got[0] / (time.perf_counter() - start), "received": got[0]}


def py_rpc(node, peer, calls):
    args = "x" * 60  # 64 bytes of msgpack
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        node.call(peer, "echo", args)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"rate": calls / sum(times), "p50_us": times[len(times) // 2] * 1e6,
            "p99_us": times[int(len(times) * 0.99)] * 1e6}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    rows = {"c publish": c_bench("publish", opts.count), "c rpc": c_bench("rpc", opts.calls)}
    directory = tempfile.mkdtemp(prefix="zc-py-bench-")
    socket = os.path.join(directory, "redis.sock")
    redis = procs.spawn(["redis-server", "--port", "0", "--unixsocket", socket, "--dir",
                         directory, "--save", "", "--appendonly", "no"],
                        stdout=subprocess.DEVNULL)
    consoles = []
    try:
        procs.wait_for(lambda: procs.redis_ping(socket), 5, "redis-server")
        env = dict(os.environ, ZC_REDIS_URL="unix://" + socket, ZC_CLUSTER="bench")
        with zcluster.Node("py-bench", redis="unix://" + socket, cluster="bench") as node:
            consoles.append(procs.CNode("--id", "c-bench", env=env))
            node.run(timeout=10, until=lambda: "c-bench" in node.peers())
            consoles[0].expect(r"^added py-bench$", node=node)
            consoles[0].command("quiet on", node=node)
            rows["py publish"] = py_publish(node, consoles[0], opts.count)
            rows["py receive"] = py_receive(node, consoles[0], opts.count)
            rows["py->c rpc"] = py_rpc(node, "c-bench", opts.calls)
            # after the floods: the peer prints every message it gets
            consoles.append(procs.PyPeer("--id", "py-peer", env=env))
            node.run(timeout=10, until=lambda: "py-peer" in node.peers())
            rows["py->py rpc"] = py_rpc(node, "py-peer", opts.calls)
    finally:
        for console in consoles:
            console.close()
        procs.stop(redis)
        shutil.rmtree(directory, ignore_errors=True)
    if opts.json:
        print(json.dumps(rows))
        return
    print(f"{'':12} {'rate /s':>10} {'p50 us':>8} {'p99 us':>8}  (64 B payloads; c rpc's "
          "rate has a window of calls in flight, the others are one at a time)")
    for name, row in rows.items():
        latency = "".join(f"{row[k]:8.1f} " if row.get(k) else f"{'-':>8} "
                          for k in ("p50_us", "p99_us"))
        print(f"{name:12} {row['rate']:10.0f} {latency}"
              + (f" send {row['send_rate']:.0f}/s" if "send_rate" in row else ""))


if __name__ == "__main__":
    main()
