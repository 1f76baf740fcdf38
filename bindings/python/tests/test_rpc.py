"""RPC between the Python binding, C nodes (`zcluster node`) and Python
peers in other processes: results, every error kind, and processes that
die mid-call."""
import threading

import pytest

import zcluster
from test_node import run_until


def c_node(node, spawned, env, id, *args):
    c = spawned("c", "--id", id, *args, env=env)
    run_until(node, lambda: id in node.peers())
    return c


def test_python_calls_c_with_every_outcome(node, env, spawned):
    c = c_node(node, spawned, env, "rc1")
    assert node.call("rc1", "echo", {"a": [1, 2]}) == {"a": [1, 2]}
    assert node.call("rc1", "ping") is None
    assert "echo" in node.call("rc1", "methods")
    assert node.call("rc1", "info")["id"] == "rc1"
    with pytest.raises(zcluster.HandlerError) as failed:
        node.call("rc1", "fail")
    assert (failed.value.code, failed.value.message, failed.value.node) == (
        42, "asked to fail", "rc1")
    with pytest.raises(zcluster.UnknownMethodError):
        node.call("rc1", "nothing-here")
    with pytest.raises(zcluster.RpcTimeout) as slow:
        node.call("rc1", "sleep", 2000, timeout=0.2)
    assert isinstance(slow.value, TimeoutError)
    with pytest.raises(zcluster.NoRouteError):
        node.call("nobody", "echo")
    with pytest.raises(zcluster.RpcInvalidError):
        node.call("rc1", "bad name")
    c.command("conn add conn-7")
    assert node.call_connection("conn-7", "echo", "via-conn") == "via-conn"
    with pytest.raises(zcluster.UnknownConnectionError):
        node.call_connection("conn-none", "echo")
    assert node.call("rc1", "echo", "still serving") == "still serving"


def test_peer_gone_mid_call(node, env, spawned):
    c = c_node(node, spawned, env, "rc2")
    # killed while the call waits (before or after the request reaches it:
    # either way the registry removes the target and the call fails at once)
    threading.Timer(0.3, c.kill).start()
    with pytest.raises(zcluster.PeerGoneError):
        node.call("rc2", "sleep", 5000, timeout=10)


def test_call_all_first_and_gather(node, env, spawned):
    """Calls to all go to every node, this one included."""
    node.register("echo", lambda request: request.args)
    me = node.id
    c_node(node, spawned, env, "ra")
    c_node(node, spawned, env, "rb")
    first = node.call_all("echo", "hi", first=True)
    assert first.node in ("ra", "rb", me) and first.value == "hi"
    everyone = node.call_all("echo", "hi")
    assert everyone.ok and everyone.values == {"ra": "hi", "rb": "hi", me: "hi"}
    failing = node.call_all("fail")
    assert set(failing.errors) == {"ra", "rb", me} and not failing.values
    assert [(e.code, e.message) for p, e in sorted(failing.errors.items()) if p != me] == [
        (42, "asked to fail")] * 2
    assert isinstance(failing.errors[me], zcluster.UnknownMethodError)
    slow = node.call_all("sleep", 3000, timeout=0.3)
    assert {"ra", "rb"} <= set(slow.missing) and not slow.ok and not slow.values
    with pytest.raises(zcluster.UnknownMethodError):
        node.call_all("nothing-here", first=True)


def test_c_calls_python_methods(node, env, spawned):
    @node.method()
    def add(request):
        return request.args[0] + request.args[1] if isinstance(request.args, list) \
            else f"{request.caller}:{request.args}"

    @node.method("refuse")
    def refuse(request):
        raise zcluster.HandlerError(7, "refused by python")

    @node.method("crash")
    def crash(request):
        raise ZeroDivisionError("python handler blew up")

    with pytest.raises(zcluster.InvalidError):
        node.register("zc.nope", add)
    with pytest.raises(zcluster.ZclusterError) as dup:
        node.register("add", add)
    assert dup.value.kind_name == "duplicate"
    c = c_node(node, spawned, env, "rc3")
    me = node.id
    c.command(f"call t1 {me} add 5000 text", node=node)
    c.expect(rf'^reply t1 {me} ok "rc3:text"$', node=node)
    c.command(f"call t2 {me} refuse 5000", node=node)
    c.expect(rf"^reply t2 {me} handler error 7 refused by python$", node=node)
    c.command(f"call t3 {me} crash 5000", node=node)
    c.expect(rf"^reply t3 {me} handler error 500 ZeroDivisionError: python handler blew up$",
             node=node)
    c.command(f"call t4 {me} missing 5000", node=node)
    c.expect(rf"^reply t4 {me} unknown method", node=node)
    c.command(f"call t5 {me} ping 5000", node=node)
    c.expect(r"^result t5 status=ok replies=1", node=node)
    # the C node kept serving, and so did this one
    assert node.call("rc3", "echo", 1) == 1
    c.command(f"call t6 {me} add 5000 again", node=node)
    c.expect(rf'^reply t6 {me} ok "rc3:again"$', node=node)


def test_python_process_killed_mid_call_leaves_c_serving(node, env, spawned):
    c = c_node(node, spawned, env, "rc4")
    py = spawned("py", "--id", "pyk", env=env)
    run_until(node, lambda: "pyk" in node.peers())
    c.expect(r"^added pyk$", node=node)
    # C calls the Python process, which dies before answering: peer gone
    c.command("call k1 pyk sleep 10000 5000", node=node)
    py.expect(r"^sleeping 5000$")  # in the handler: killed mid-call
    py.kill()
    c.expect(r"^reply k1 pyk peer gone|^result k1 status=peer gone", timeout=10, node=node)
    # ... and the C node still serves
    assert node.call("rc4", "echo", "alive") == "alive"
    # a Python process that dies while it is the caller
    py2 = spawned("py", "--id", "pyk2", env=env)
    c.expect(r"^added pyk2$", node=node)
    py2.command("call k2 rc4 sleep 5000 1500")
    py2.kill()
    c.expect(r"^removed pyk2", node=node)
    assert node.call("rc4", "echo", "still alive") == "still alive"


def test_python_handler_raising_in_another_process(node, env, spawned):
    c = c_node(node, spawned, env, "rc5")
    spawned("py", "--id", "pyr", env=env)
    c.expect(r"^added pyr$", node=node)
    c.command("call r1 pyr raise 5000", node=node)
    c.expect(r"^reply r1 pyr handler error 500 ValueError: a python handler raised$", node=node)
    c.command("call r2 pyr echo 5000 fine", node=node)
    c.expect(r'^reply r2 pyr ok "fine"$', node=node)
    with pytest.raises(zcluster.HandlerError) as failed:
        node.call("pyr", "raise")
    assert failed.value.code == zcluster.HANDLER_CRASHED_CODE
    assert node.call("pyr", "echo", [1]) == [1]


def test_rpc_stats(node, env, spawned):
    c_node(node, spawned, env, "rc6")
    node.call("rc6", "ping")
    stats = node.rpc_stats()
    assert stats["calls_started"] >= 1 and stats["calls_ok"] >= 1


def test_a_result_that_is_not_msgpack_is_corrupt(node, env, spawned):
    c_node(node, spawned, env, "rc7")
    # the C console's echo returns the arguments as they came: send broken ones
    import ctypes
    from zcluster._lib import lib
    call = ctypes.c_void_p(lib.zc_rpc_call(node._rpc, 1, b"rc7", b"echo", b"\xc1", 1, 5000))
    try:
        assert lib.zc_rpc_call_status(call) == 0
        with pytest.raises(zcluster.CorruptError):
            node._single(call)
    finally:
        lib.zc_rpc_call_destroy(ctypes.byref(call))
