"""Cross-language: a C node (`zcluster node`), a Python-binding node
(bindings/python/tests/peer.py) and a Node.js peer (bindings/node/peer-cli.js,
which speaks the wire protocol without the C library) in one cluster. All
three consoles take the same commands and print the same lines, so every
check runs for every ordered pair: every message kind both ways, every RPC
outcome both ways, a process of each kind killed mid-call, confirmations,
kill requests from each kind to another, and each one seeing the others
leave.

Run by .ci/test with the binding's tests (pytest, a Release libzcluster):
    ZCLUSTER_LIB=build-py/libzcluster.so /usr/bin/python3 -m pytest tests/test_cross_language.py
$ZC_NODE_PEER overrides the Node.js console's path.
"""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings",
                                "python", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings",
                                "python"))

import procs  # noqa: E402
from zcfixtures import cluster, env, redis_url, spawned  # noqa: E402,F401

KINDS = ("c", "py", "js")


def _node_peer_ready():
    cli = procs.node_peer_cli()
    if not os.path.exists(cli):
        pytest.skip(f"no Node.js peer at {cli}")
    assert shutil.which("node"), "node is not installed (.ci/install-deps)"
    assert os.path.isdir(os.path.join(os.path.dirname(cli), "node_modules")), \
        "the Node.js peer's packages are not installed (npm ci in bindings/node)"


@pytest.fixture
def trio(env, spawned):
    """One node of each kind, all in group "room", each seeing the other two."""
    _node_peer_ready()
    nodes = {kind: spawned(kind, "--id", f"{kind}-x", "--group", "room", env=env)
             for kind in KINDS}
    for kind, console in nodes.items():
        console.expect_all([rf"^added {o.id}$" for k, o in nodes.items() if k != kind])
    for sender in nodes.values():
        subscribed(sender, [n for n in nodes.values() if n is not sender])
    return nodes


def subscribed(sender, receivers):
    """Waits until receivers get sender's public messages: a subscriber's
    connection comes up a little after it hears of the sender (ZeroMQ
    PUB/SUB drops what is sent before), so probe until each got one."""
    waiting = list(receivers)
    for _ in range(100):
        sender.command(f"publish probe-{sender.id} probe")
        for receiver in list(waiting):
            try:
                receiver.expect(rf"^msg public {sender.id} - probe-{sender.id} ", timeout=0.1)
                waiting.remove(receiver)
            except AssertionError:
                pass
        if not waiting:
            return
    raise AssertionError(f"{[r.id for r in waiting]} never heard {sender.id}")


def pairs(nodes):
    return [(a, b) for a in nodes.values() for b in nodes.values() if a is not b]


def test_every_message_kind_both_ways(trio):
    for sender in trio.values():
        others = [n for n in trio.values() if n is not sender]
        sender.command(f"publish pub-{sender.id} hello from {sender.id}")
        for receiver in others:
            receiver.expect(rf"^msg public {sender.id} - pub-{sender.id} \d+ "
                            rf"hello from {sender.id}$")
        sender.command(f"shout room grp-{sender.id} to the room")
        for receiver in others:
            receiver.expect(rf"^msg group {sender.id} room grp-{sender.id} \d+ to the room$")
    for sender, receiver in pairs(trio):
        sender.command(f"whisper {receiver.id} prv just for {receiver.id}")
        receiver.expect(rf"^msg private {sender.id} - prv \d+ just for {receiver.id}$")
    # a group left is no longer delivered to (the next public message shows the order)
    trio["py"].command("leave room")
    trio["js"].command("leave room")
    trio["c"].command("shout room late after the leave")
    trio["c"].command("publish mark marker")
    for kind in ("py", "js"):
        line = trio[kind].expect(r"^msg \S+ c-x \S+ (late|mark) ").group(1)
        assert line == "mark", f"{kind} got a group message after leaving"


def call(caller, tag, target, method, ms, text=""):
    caller.command(f"call {tag} {target} {method} {ms} {text}".rstrip())


def test_every_rpc_outcome_both_ways(trio):
    for node in trio.values():
        node.command(f"conn add conn-{node.id}")
    for caller, callee in pairs(trio):
        t, to = f"{caller.id}.{callee.id}", callee.id
        call(caller, f"{t}.echo", to, "echo", 5000, "hi")
        caller.expect(rf'^reply {t}.echo {to} ok "hi"$')
        caller.expect(rf"^result {t}.echo status=ok replies=1")
        call(caller, f"{t}.fail", to, "fail", 5000)
        caller.expect(rf"^reply {t}.fail {to} handler error 42 asked to fail$")
        caller.expect(rf"^result {t}.fail status=handler error replies=1")
        call(caller, f"{t}.none", to, "no-such-method", 5000)
        caller.expect(rf"^reply {t}.none {to} unknown method ")
        caller.expect(rf"^result {t}.none status=unknown method replies=1")
        call(caller, f"{t}.slow", to, "sleep", 200, "1000")
        caller.expect(rf"^result {t}.slow status=timed out ")
        call(caller, f"{t}.conn", f"@conn-{to}", "echo", 5000, "via conn")
        caller.expect(rf"^result {t}.conn status=ok replies=1")
        call(caller, f"{t}.ping", to, "ping", 5000)
        caller.expect(rf"^result {t}.ping status=ok replies=1")
    for caller in trio.values():
        t = caller.id
        call(caller, f"{t}.noroute", "nobody-here", "echo", 1000)
        caller.expect(rf"^result {t}.noroute status=no route to node ")
        call(caller, f"{t}.noconn", "@no-such-conn", "echo", 1000)
        caller.expect(rf"^result {t}.noconn status=unknown connection ")
        call(caller, f"{t}.invalid", "c-x", "m" * 300, 1000)
        caller.expect(rf"^result {t}.invalid status=invalid call ")
        call(caller, f"{t}.all", "*", "echo", 5000, "all")
        caller.expect(rf"^result {t}.all status=ok replies=3 missing=$")
        call(caller, f"{t}.first", "*first", "echo", 5000, "one")
        caller.expect(rf"^result {t}.first status=ok ")
    # a Python method that raises: the callers get the error, everyone keeps serving
    for caller in (trio["c"], trio["js"]):
        t = caller.id
        call(caller, f"{t}.raise", "py-x", "raise", 5000)
        caller.expect(rf"^reply {t}.raise py-x handler error 500 "
                      rf"ValueError: a python handler raised$")
        call(caller, f"{t}.after", "py-x", "echo", 5000, "still")
        caller.expect(rf'^reply {t}.after py-x ok "still"$')


@pytest.mark.parametrize("victim_kind", KINDS)
def test_a_process_killed_mid_call_is_peer_gone(trio, env, spawned, victim_kind):
    victim = spawned(victim_kind, "--id", f"{victim_kind}-victim", env=env)
    callers = [trio[k] for k in KINDS if k != victim_kind]
    for caller in callers:
        caller.expect(rf"^added {victim.id}$")
        call(caller, f"{caller.id}.gone", victim.id, "sleep", 10000, "10000")
    if victim_kind == "py":  # it prints when its handler starts: truly mid-call
        victim.expect_all([r"^sleeping 10000$", r"^sleeping 10000$"])
    victim.kill()
    for caller in callers:
        caller.expect(rf"^result {caller.id}.gone status=peer gone ", timeout=15)
        caller.expect(rf"^removed {victim.id} (crashed|expired)$")
        call(caller, f"{caller.id}.alive", trio[victim_kind].id, "echo", 5000, "ok")
        caller.expect(rf"^result {caller.id}.alive status=ok")


def test_each_sees_the_others_leave(trio, env, spawned):
    for kind in KINDS:
        leaver = trio[kind]
        others = [n for k, n in trio.items() if k != kind]
        leaver.send("quit")
        assert leaver.proc.wait(10) == 0
        for other in others:
            other.expect(rf"^removed {leaver.id} left$")
        trio[kind] = back = spawned(kind, "--id", leaver.id, "--group", "room", env=env)
        back.expect_all([rf"^added {o.id}$" for o in others])
        for other in others:
            other.expect(rf"^added {leaver.id}$")


def test_confirmations_and_kill_across_languages(trio, env, spawned):
    for node in trio.values():
        node.command(f"confirm up-{node.id}")
    for kind, node in trio.items():
        for other in (o for k, o in trio.items() if k != kind):
            assert node.command(f"wait up-{other.id} 1 10000") == other.id
    # each kind asks another kind to exit with a code of its own
    for killer_kind, victim_kind, code in (("c", "js", 3), ("js", "py", 4), ("py", "c", 5)):
        victim = spawned(victim_kind, "--id", f"{victim_kind}-kill", env=env)
        killer = trio[killer_kind]
        killer.expect(rf"^added {victim.id}$")
        killer.command(f"kill {victim.id} {code}")
        assert victim.proc.wait(10) == code, f"{killer.id} killing {victim.id}"
        killer.expect(rf"^removed {victim.id} left$")
