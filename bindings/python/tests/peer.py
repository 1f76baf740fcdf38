"""A Python-binding node driven by line commands, printing what it sees in
the same words as `zcluster node`, so one test drives both the same way.

Usage: peer.py [--id ID] [--group G]... (Redis and cluster: $ZC_REDIS_URL,
$ZC_CLUSTER). Prints `ready ID`. Commands (one answer line each):
  publish TYPE TEXT | shout GROUP TYPE TEXT | whisper ID TYPE TEXT
  join GROUP | leave GROUP | kill ID CODE | conn add|remove ID | quit
  confirm NAME | wait NAME COUNT MS  (`ok wait ID,ID...`)
  call TAG TARGET METHOD MS [TEXT]   (TARGET: ID, *, *first, @CONNECTION)
Methods served: echo, sleep (args: ms), fail (HandlerError 42 "asked to
fail") and raise (a ValueError: an unexpected exception).
"""
import argparse
import json
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import zcluster  # noqa: E402

def out(line):
    print(line.replace("\n", " "), flush=True)


def status_name(kind):
    """The console's words for an outcome, as `zcluster node` prints them."""
    return {zcluster.errors.TIMEOUT: "timed out", zcluster.errors.NO_ROUTE: "no route to node",
            zcluster.errors.INVALID: "invalid call"}.get(kind) or zcluster.ZclusterError(
                kind=kind).kind_name


def printable(data):
    """A payload as the C console prints it: 200 bytes, '.' for the unprintable."""
    return "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in data[:200])


def value_text(value):
    """A result the way msgpack-c prints it (strings quoted, nil)."""
    if value is None:
        return "nil"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (bytes, bytearray)):
        return "(bin)"
    if isinstance(value, list):
        return "[" + ", ".join(map(value_text, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}=>{value_text(v)}"
                               for k, v in value.items()) + "}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def print_replies(tag, values, failures, missing, status):
    for peer, value in values.items():
        out(f"reply {tag} {peer} ok {value_text(value)}")
    for peer, exc in failures.items():
        out(f"reply {tag} {peer} {status_name(exc.kind)} {getattr(exc, 'code', 0)} {exc.message}")
    out(f"result {tag} status={status} replies={len(values) + len(failures)} "
        f"missing={','.join(missing)}")


def print_call(node, tag, target, method, ms, text):
    """Runs a console `call` and prints its replies and result as C does."""
    timeout = int(ms) / 1000
    try:
        if target == "*":
            got = node.call_all(method, text, timeout)
            first = next(iter(got.errors.values()), None)
            status = status_name(first.kind) if first else "timed out" if got.missing else "ok"
            print_replies(tag, got.values, got.errors, got.missing, status)
            return
        if target == "*first":
            reply = node.call_all(method, text, timeout, first=True)
            peer, value = reply.node, reply.value
        elif target.startswith("@"):
            peer, value = None, node.call_connection(target[1:], method, text, timeout)
        else:
            peer, value = target, node.call(target, method, text, timeout)
        print_replies(tag, {peer or target[1:]: value}, {}, [], "ok")
    except zcluster.RpcError as exc:
        print_replies(tag, {}, {exc.node: exc} if exc.node else {}, [], status_name(exc.kind))


def serve(node, commands):
    while True:
        node.run(timeout=0.02)
        while not commands.empty():
            line = commands.get()
            if line is None or line == "quit":
                return
            words = line.split(" ", 5)
            verb = words[0]
            try:
                if verb in ("publish", "shout", "whisper"):
                    n = 1 if verb == "publish" else 2  # words before the text
                    parts = line.split(" ", n + 1)
                    text = parts[n + 1] if len(parts) > n + 1 else ""
                    getattr(node, verb)(*parts[1:n + 1], text.encode())
                elif verb in ("join", "leave"):
                    getattr(node, verb)(words[1])
                elif verb == "kill":
                    node.kill(words[1], int(words[2]))
                elif verb == "confirm":
                    node.confirm(words[1])
                elif verb == "wait":
                    ids = node.wait_confirmations(words[1], int(words[2]), int(words[3]) / 1000)
                    out(f"ok wait {','.join(ids)}")
                    continue
                elif verb == "conn":
                    getattr(node, words[1] + "_connection")(words[2])
                elif verb == "call":
                    out("ok call")
                    print_call(node, *words[1:5], words[5] if len(words) > 5 else "")
                    continue
                else:
                    out(f"error {verb}: unknown command")
                    continue
                out(f"ok {verb}")
            except Exception as exc:  # a console answers every line
                out(f"error {verb}: {exc}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--id")
    parser.add_argument("--group", action="append", default=[])
    opts = parser.parse_args()
    node = zcluster.Node(opts.id, lease_ttl=1.5, groups=opts.group,
                         on_peer_added=lambda peer: out(f"added {peer}"),
                         on_peer_removed=lambda peer, why: out(f"removed {peer} {why}"),
                         on_promoted=lambda epoch: out(f"promoted {epoch}"),
                         on_demoted=lambda epoch: out(f"demoted {epoch}"))
    node.on_message = lambda m: out(
        f"msg {m.kind} {m.sender} {m.group or '-'} {m.type} {m.seq} {printable(m.data)}")

    @node.method()
    def echo(request):
        return request.args

    @node.method()
    def sleep(request):
        out(f"sleeping {request.args}")
        time.sleep(int(request.args or 0) / 1000)
        return "slept"

    @node.method()
    def fail(request):
        raise zcluster.HandlerError(42, "asked to fail")

    @node.method("raise")
    def crash(request):
        raise ValueError("a python handler raised")

    commands = queue.Queue()

    def read():
        for line in sys.stdin:
            commands.put(line.rstrip("\n"))
        commands.put(None)
    threading.Thread(target=read, daemon=True).start()
    with node:
        out(f"ready {node.id}")
        serve(node, commands)


if __name__ == "__main__":
    main()
