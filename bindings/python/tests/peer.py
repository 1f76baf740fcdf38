"""A Python-binding node driven by line commands, printing what it sees in
the same words as `zcluster node`, so one test drives both the same way.

Usage: peer.py [--id ID] [--group G]... (Redis and cluster: $ZC_REDIS_URL,
$ZC_CLUSTER). Prints `ready ID`. Commands (one answer line each):
  publish TYPE TEXT | shout GROUP TYPE TEXT | whisper ID TYPE TEXT
  join GROUP | leave GROUP | kill ID CODE | conn add|remove ID | quit
  call TAG TARGET METHOD MS [TEXT]   (TARGET: ID, *, *first, @CONNECTION)
Methods served: echo, sleep (args: ms), fail (HandlerError 42 "asked to
fail") and raise (a ValueError: an unexpected exception).
"""
import argparse
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import zcluster  # noqa: E402

STATUS = {zcluster.UnknownMethodError: "unknown method", zcluster.HandlerError: "handler error",
          zcluster.PeerGoneError: "peer gone", zcluster.NoRouteError: "no route to node",
          zcluster.UnknownConnectionError: "unknown connection",
          zcluster.RpcTimeout: "timed out", zcluster.RpcInvalidError: "invalid call"}


def out(line):
    print(line, flush=True)


def status(exc):
    return STATUS.get(type(exc), "error")


def describe(exc):
    code = getattr(exc, "code", 0)
    return f"{status(exc)} {code} {exc.message}"


def print_call(node, tag, target, method, ms, text):
    timeout = int(ms) / 1000
    args = text
    try:
        if target == "*":
            result = node.call_all(method, args, timeout)
            for peer, value in result.values.items():
                out(f"reply {tag} {peer} ok {value!r}")
            for peer, exc in result.errors.items():
                out(f"reply {tag} {peer} {describe(exc)}")
            out(f"result {tag} status={'ok' if result.ok else 'failed'} "
                f"replies={len(result.values) + len(result.errors)} "
                f"missing={','.join(result.missing)}")
            return
        if target == "*first":
            reply = node.call_all(method, args, timeout, first=True)
            peer, value = reply.node, reply.value
        elif target.startswith("@"):
            peer, value = target[1:], node.call_connection(target[1:], method, args, timeout)
        else:
            peer, value = target, node.call(target, method, args, timeout)
        out(f"reply {tag} {peer} ok {value!r}")
        out(f"result {tag} status=ok")
    except zcluster.RpcError as exc:
        out(f"reply {tag} {exc.node or '-'} {describe(exc)}")
        out(f"result {tag} status={status(exc)}")


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
                    parts = line.split(" ", {"publish": 2, "shout": 3, "whisper": 3}[verb])
                    getattr(node, verb)(*parts[1:-1], parts[-1].encode())
                elif verb in ("join", "leave"):
                    getattr(node, verb)(words[1])
                elif verb == "kill":
                    node.kill(words[1], int(words[2]))
                elif verb == "conn":
                    getattr(node, words[1] + "_connection")(words[2])
                elif verb == "call":
                    out(f"ok call")
                    print_call(node, *words[1:5], words[5] if len(words) > 5 else "")
                    continue
                else:
                    out(f"error {verb}: unknown command")
                    continue
                out(f"ok {verb}")
            except Exception as exc:  # noqa: B902 -- a console answers every line
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
        f"msg {m.kind} {m.sender} {m.group or '-'} {m.type} {m.seq} {m.text}")

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
