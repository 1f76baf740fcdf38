#!/usr/bin/env python3
"""zcluster bench must not rot: every scenario at tiny counts, --rate, --batch,
the summary table and a --rate plot. Checks the fields and that every --json
line parses; never how fast anything was (the machine may be busy).

usage: bench_smoke.py ZCLUSTER_BINARY"""
import json
import os
import subprocess
import sys
import tempfile

CLI = sys.argv[1]
COUNT = 300


def run(*args, expect=0):
    done = subprocess.run([CLI, "bench", *args], capture_output=True, text=True, timeout=240)
    if done.returncode != expect:
        sys.exit(f"FAIL: bench {' '.join(args)} exited {done.returncode}, not {expect}\n"
                 f"{done.stdout}\n{done.stderr}")
    return done


def check(condition, what, line):
    if not condition:
        sys.exit(f"FAIL: {what}\n{line}")


def check_side(side, line, sent=None, latency=False):
    for field in ("name", "size", "count", "nodes", "rate", "received"):
        check(field in side, f"no '{field}'", line)
    check(side["rate"] >= 0 and side["received"] >= 0, "negative rate or count", line)
    if sent is not None:
        check(side.get("sent") == sent, f"'sent' is not {sent}", line)
        check(0 <= side["delivered"] <= 1, "'delivered' out of 0..1", line)
        check(side["received"] <= sent, "more received than sent", line)
        check(abs(side["delivered"] - side["received"] / sent) < 1e-3,
              "'delivered' is not received / sent", line)
    if latency:
        check("p50_us" in side, "no p50_us", line)
        check(0 <= side["p50_us"] <= side["p99_us"] <= side["p999_us"],
              "percentiles out of order", line)


def json_lines(*args):
    out = run(*args, "--json").stdout
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        try:
            rows.append((json.loads(line), line))
        except json.JSONDecodeError as e:
            sys.exit(f"FAIL: bench {' '.join(args)} --json printed a line that is not JSON "
                     f"({e}):\n{line}")
    return rows


# Every scenario, as fast as it goes: which comparisons each must report.
EXPECTED = {
    "publish": ["publish"], "shout": ["shout"], "whisper": ["whisper", "whisper-rtt"],
    "rpc": ["rpc"], "rpc-all": ["rpc-all"], "redis-pubsub": ["redis-pubsub"],
    "cache": ["cache-save-batch", "cache-load-batch", "cache-save", "cache-load"],
    "tasks": ["tasks-enqueue", "tasks-process"],
    "tasks-default": ["default-enqueue", "tasks-default"],
}
LATENCY = {"whisper-rtt", "rpc", "rpc-all"}
LOSSY = {"publish", "shout", "whisper"}  # counted against what was sent

for scenario, measures in EXPECTED.items():
    rows = json_lines(scenario, "--count", str(COUNT), "--nodes", "2")
    check([r["scenario"] for r, _ in rows] == measures,
          f"{scenario}: comparisons {[r['scenario'] for r, _ in rows]}, not {measures}",
          "\n".join(line for _, line in rows))
    for row, line in rows:
        check("ratio" in row and row["ratio"] >= 0, "no ratio", line)
        sent = COUNT if row["scenario"] in LOSSY else None
        latency = row["scenario"] in LATENCY
        check_side(row, line, sent, latency)
        check_side(row["baseline"], line, sent, latency)

# A fixed offered rate: latency from the intended send time, delivered fraction.
for scenario in ("publish", "shout", "whisper", "rpc"):
    rows = json_lines(scenario, "--rate", "2000", "--count", str(COUNT))
    check([r["scenario"] for r, _ in rows] == [scenario], f"--rate {scenario}: one comparison",
          "\n".join(line for _, line in rows))
    row, line = rows[0]
    for side in (row, row["baseline"]):
        check_side(side, line, COUNT, latency=True)
        check(side.get("offered_rate") == 2000, "offered_rate is not 2000", line)

# --batch: the sending node batches; the same comparisons, the project side
# named for it, the raw baseline unchanged.
for scenario, rate in (("publish", None), ("shout", None), ("whisper", None), ("publish", "2000")):
    extra = ("--rate", rate) if rate else ()
    rows = json_lines(scenario, "--batch", "--count", str(COUNT), *extra)
    check([r["scenario"] for r, _ in rows] == (EXPECTED[scenario] if not rate else [scenario]),
          f"--batch {scenario}: comparisons", "\n".join(line for _, line in rows))
    for row, line in rows:
        check(row["name"].startswith("zcluster") and row["baseline"]["name"].startswith("zmq"),
              "sides", line)
        check_side(row, line, COUNT if row["scenario"] in LOSSY else None,
                   row["scenario"] in LATENCY or rate is not None)
    check(rows[0][0]["name"] == "zcluster-batch", "the project side is zcluster-batch", rows[0][1])

# What --rate does not apply to, and a payload too small for the send time.
run("cache", "--rate", "100", expect=64)
run("publish", "--rate", "100", "--size", "4", expect=64)
run("publish", "--rate", "abc", expect=64)
run("publish", "--rate", "0", expect=64)

# The table of every scenario, with its progress line on stderr.
done = run("--count", str(COUNT))
for measure in [m for ms in EXPECTED.values() for m in ms]:
    check(any(line.split()[:1] == [measure] for line in done.stdout.splitlines()),
          f"the table has no row '{measure}'", done.stdout)
check("delivered %" in done.stdout and "ratio" in done.stdout, "table header", done.stdout)
check(f"[{len(EXPECTED)}/{len(EXPECTED)}]" in done.stderr, "no progress line", done.stderr)

# Latency against offered load, drawn.
with tempfile.TemporaryDirectory(prefix="zc-bench-plot-") as tmp:
    png = os.path.join(tmp, "rpc.png")
    run("rpc", "--rate", "2000", "--count", "400", "--plot", png)
    check(os.path.getsize(png) > 0, "no png", png)
    data = open(os.path.join(tmp, "rpc.dat")).read().splitlines()
    points = [l.split() for l in data if l and not l.startswith("#")]
    check(len(points) == 7 and all(len(p) == 5 for p in points),
          "7 offered loads, each with p50 and p99 of both sides", "\n".join(data))

print("bench smoke: every scenario, --rate, the table and the plot: ok")
