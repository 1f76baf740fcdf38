"""Node against real C nodes (`zcluster node`) and a real Redis."""
import os
import sys
import time

import pytest

import zcluster


def run_until(node, predicate, timeout=10):
    node.run(timeout=timeout, until=predicate)
    assert predicate(), "condition not reached in time"


#  A subscriber's connection comes up a little after it hears of the
#  publisher, and ZeroMQ PUB/SUB drops what is published before: tests that
#  publish first probe until the other side hears (nothing else waits).

def heard_by(node, console):
    """Waits until console's node receives node's public messages."""
    for _ in range(100):
        node.publish("probe", b"p")
        try:
            console.expect(rf"^msg public {node.id} - probe ", timeout=0.1, node=node)
            return
        except AssertionError:
            pass
    raise AssertionError(f"{console.id} never heard {node.id}")


def hears(node, console):
    """Waits until node receives console's node's public messages."""
    got = []
    node.on("probe", got.append)
    for _ in range(100):
        console.command("publish probe p", node=node)
        node.run(0.1, until=lambda: got)
        if got:
            break
    node.on("probe", None)
    assert got, f"{node.id} never heard {console.id}"


def test_start_id_and_cluster(node, cluster):
    assert node.cluster == cluster
    assert node.id
    assert not node.closed
    run_until(node, lambda: node.redis_up)


def test_invalid_id_and_closed_node():
    with pytest.raises(zcluster.InvalidError):
        zcluster.Node("bad id with spaces")
    n = zcluster.Node("ok-id", redis="unix:///nonexistent")
    n.close()
    n.close()
    with pytest.raises(zcluster.StateError):
        n.publish("x", b"")


def test_messages_both_ways_with_a_c_node(node, env, spawned):
    got = []
    node.on("greet", got.append)
    node.join("room")
    c = spawned("c", "--id", "c1", "--group", "room", env=env)
    run_until(node, lambda: "c1" in node.peers())
    c.expect(r"^added " + node.id, node=node)
    hears(node, c)
    heard_by(node, c)
    # C -> Python: public, group, private
    c.command("publish greet hello-public")
    c.command("shout room greet hello-group")
    c.command(f"whisper {node.id} greet hello-private")
    run_until(node, lambda: len(got) == 3)
    assert {(m.kind, m.sender, m.group, m.data) for m in got} == {
        ("public", "c1", None, b"hello-public"), ("group", "c1", "room", b"hello-group"),
        ("private", "c1", None, b"hello-private")}
    # Python -> C: bytes as they are, values as msgpack
    node.publish("note", b"raw-bytes")
    node.shout("room", "note", b"to-the-room")
    node.whisper("c1", "note", {"k": 1})
    c.expect(rf"^msg public {node.id} - note \d+ raw-bytes$")
    c.expect(rf"^msg group {node.id} room note \d+ to-the-room$")
    c.expect(rf"^msg private {node.id} - note \d+ \.\.k\.$")  # msgpack {"k": 1}


def test_wait_peers_then_the_first_publish_arrives(node, env, spawned):
    c = spawned("c", "--id", "c1", env=env)
    run_until(node, lambda: "c1" in node.peers())
    node.wait_peers(1, 10)
    node.publish("first", b"once")  # one publish, no probing: the wait made it safe
    c.expect(rf"^msg public {node.id} - first \d+ once$")
    with pytest.raises(zcluster.TimedOut):
        node.wait_peers(2, 0.3)


def test_value_payload_round_trip_and_unhandled_messages(redis_url, cluster):
    with zcluster.Node("a", redis=redis_url, cluster=cluster) as a, \
            zcluster.Node("b", redis=redis_url, cluster=cluster) as b:
        # two nodes in one thread: each runs while the other waits
        deadline = time.monotonic() + 10
        while "b" not in a.peers() or "a" not in b.peers():
            a.run(0.02)
            b.run(0.02)
            assert time.monotonic() < deadline
        a.whisper("b", "data", {"list": [1, 2.5, "x", b"\x00bin"], "none": None})
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = b.recv(0.05)
        assert msg.type == "data" and msg.kind == "private" and msg.sender == "a"
        assert msg.value == {"list": [1, 2.5, "x", b"\x00bin"], "none": None}


def test_handler_that_raises_is_logged_and_counted(node, env, spawned, caplog):
    def bad(msg):
        raise RuntimeError("boom")
    node.on("bad", bad)
    got = []
    node.on("good", got.append)
    c = spawned("c", "--id", "c2", env=env)
    run_until(node, lambda: "c2" in node.peers())
    hears(node, c)
    c.command("publish bad x")
    c.command("publish good y")
    run_until(node, lambda: got)
    assert node.handler_errors == 1
    assert "boom" in caplog.text
    node.on("good", None)  # removed: the next one is unhandled
    c.command("publish good z")
    msg = node.recv(10)
    assert msg.type == "good" and msg.data == b"z"


def test_groups_join_leave_and_errors(node, env, spawned):
    got = []
    node.on("g", got.append)
    node.join("blue")
    c = spawned("c", "--id", "c3", env=env)
    run_until(node, lambda: "c3" in node.peers())
    hears(node, c)
    node.leave("blue")
    with pytest.raises(zcluster.MissingError):
        node.leave("blue")
    with pytest.raises(zcluster.InvalidError):
        node.join("")
    c.command("shout blue g after-leave")
    c.command("publish g marker")
    run_until(node, lambda: got)
    assert [m.data for m in got] == [b"marker"]
    with pytest.raises(zcluster.NoRouteError):
        node.whisper("nobody", "t", b"")
    with pytest.raises(zcluster.InvalidError):
        node.publish("", b"")


def test_membership_info_leader_and_leaving(redis_url, cluster, env, spawned):
    events = []
    with zcluster.Node("py-m", redis=redis_url, cluster=cluster, lease_ttl=1.5,
                       headers={"role": "test"},
                       on_peer_added=lambda p: events.append(("added", p)),
                       on_peer_removed=lambda p, why: events.append(("removed", p, why)),
                       on_promoted=lambda e: events.append(("promoted", e)),
                       on_demoted=lambda e: events.append(("demoted", e))) as node:
        run_until(node, lambda: node.leader)
        assert ("promoted", node.epoch) in events
        c = spawned("c", "--id", "c4", env=env)
        k = spawned("c", "--id", "c5", env=env)
        run_until(node, lambda: {"c4", "c5"} <= set(node.peers()))
        assert "c4" in node
        info = node.info()
        assert info["self"] == "py-m" and info["cluster"] == cluster
        mine = [r for r in info["nodes"] if r["id"] == "py-m"]
        assert mine and mine[0]["headers"] == {"role": "test"}
        c.command("quit")
        k.kill()
        run_until(node, lambda: len([e for e in events if e[0] == "removed"]) == 2)
        assert ("removed", "c4", "left") in events
        assert ("removed", "c5", "crashed") in events or ("removed", "c5", "expired") in events
    assert node.closed


def test_kill_and_confirmations(redis_url, cluster, env, spawned):
    with zcluster.Node("py-k", redis=redis_url, cluster=cluster) as node:
        c = spawned("c", "--id", "c6", env=env)
        run_until(node, lambda: "c6" in node.peers())
        c.expect(r"^added py-k$", node=node)
        hears(node, c)
        heard_by(node, c)
        c.command("confirm warm")  # queued on the socket: this node is not running
        start = time.monotonic()
        assert node.wait_confirmations("warm", 1, 30) == ["c6"]
        assert time.monotonic() - start < 15, "the wait ran to its timeout"
        with pytest.raises(zcluster.TimedOut):
            node.wait_confirmations("never", 1, 0.2)
        node.confirm("hot")
        assert c.command("wait hot 1 10000") == "py-k"
        node.kill("c6", 3)
        assert c.proc.wait(10) == 3
        kills = []
        node.on_kill = lambda sender, code: kills.append((sender, code))
        k = spawned("c", "--id", "c7", env=env)
        run_until(node, lambda: "c7" in node.peers())
        k.command("kill py-k 9")
        run_until(node, lambda: kills)
        assert kills == [("c7", 9)]


def test_default_kill_closes_and_raises_systemexit(node, env, spawned):
    c = spawned("c", "--id", "c8", env=env)
    run_until(node, lambda: "c8" in node.peers())
    c.command(f"kill {node.id} 7")
    with pytest.raises(SystemExit) as exit_info:
        node.run(timeout=10)
    assert exit_info.value.code == 7
    assert node.closed
    c.expect(rf"^removed {node.id} left$")


def test_only_the_owner_thread_uses_the_node(node):
    import threading
    caught = []

    def other():
        try:
            node.publish("x", b"")
        except RuntimeError as exc:
            caught.append(exc)
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert caught


def test_ctrl_c_interrupts_a_waiting_node():
    """Python keeps SIGINT (CZMQ's handler would swallow it): KeyboardInterrupt
    reaches a node blocked in recv() without a timeout."""
    import signal
    import subprocess
    import sys
    script = ("import sys; sys.path.insert(0, %r); import zcluster\n"
              "node = zcluster.Node(redis='unix:///nonexistent/redis.sock').start()\n"
              "try:\n    print('waiting', flush=True)\n    while True:\n        node.recv()\n"
              "except KeyboardInterrupt:\n    print('interrupted')\n"
              "node.close()\n") % os.path.join(os.path.dirname(__file__), "..")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline() == "waiting\n"
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline() == "interrupted\n"
        assert proc.wait(10) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_sys_exit_in_a_handler_leaves_the_node_loop(node, env, spawned):
    node.on("stop", lambda msg: sys.exit(5))
    c = spawned("c", "--id", "c9", env=env)
    run_until(node, lambda: "c9" in node.peers())
    hears(node, c)
    c.command("publish stop now")
    with pytest.raises(SystemExit) as exit_info:
        node.run(timeout=10)
    assert exit_info.value.code == 5 and node.handler_errors == 0


def test_mesh_settings(redis_url, cluster):
    with zcluster.Node("py-s", redis=redis_url, cluster=cluster, max_msg_size=100, hwm=1000,
                       endpoints=("tcp://*:*", "tcp://*:*"), advertise_host="py-s.example",
                       ) as node:
        def record():
            return [r for r in node.info()["nodes"] if r["id"] == "py-s"]
        run_until(node, record)
        assert record()[0]["pub"].startswith("tcp://py-s.example:")
        assert record()[0]["router"].startswith("tcp://py-s.example:")
        with pytest.raises(zcluster.InvalidError):
            node.publish("big", b"x" * 101)
        node.publish("small", b"x" * 100)


def test_bad_arguments_free_the_node():
    with pytest.raises(TypeError):
        zcluster.Node("typo", on_peer_addd=print)
    with pytest.raises(zcluster.InvalidError):
        zcluster.Node("bad-header", headers={"": "x"})
    assert not [n for n in zcluster.node._open_nodes if n.id in ("typo", "bad-header")]
