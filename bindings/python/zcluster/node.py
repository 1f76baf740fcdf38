"""Node: a cluster node (include/zc_node.h) with its RPC (rpc.py).

A node belongs to the thread that starts it, as in C: that thread sends,
receives and calls, and the node only does its work (membership, message
handlers, kill requests, completing calls) while that thread is inside
recv(), run(), call...() or wait_confirmations(). Calling it from another
thread raises RuntimeError. Message handlers and membership callbacks run on
that thread too; RPC methods run on the node's RPC threads.

A Python exception in a message handler or callback is logged (logger
"zcluster") and counted in `handler_errors`; it never reaches C.

Close the node (close(), or use it as a context manager): the C node and
the callbacks it holds live until then. Nodes still open at interpreter exit
are closed by an atexit hook, before Python tears down.
"""
import atexit
import collections
import ctypes
import errno as errno_codes
import json
import threading
import time

from . import _callbacks, _codec, errors
from ._lib import (EPOCH_FN, KILL_FN, MESH_HANDLER, PEER_ADDED, PEER_REMOVED, MeshStats,
                   NodeEvents, lib, libc, string, struct_dict, text)
from .rpc import RpcMixin

KINDS = {1: "public", 2: "group", 3: "private", 4: "request", 5: "reply"}
REMOVED_REASONS = {1: "left", 2: "expired", 3: "crashed"}

_open_nodes = set()


class Message:
    """A received message; `data` is its payload as bytes."""
    __slots__ = ("kind", "type", "sender", "group", "seq", "data")

    def __init__(self, msg):
        self.kind = KINDS.get(lib.zc_msg_kind(msg), "?")
        self.type = string(lib.zc_msg_type(msg))
        self.sender = string(lib.zc_msg_sender(msg))
        self.group = string(lib.zc_msg_group(msg))
        self.seq = lib.zc_msg_seq(msg)
        self.data = _codec.copy(lib.zc_msg_data(msg), lib.zc_msg_size(msg))

    @property
    def value(self):
        """The payload unpacked as one msgpack object."""
        return _codec.unpack(self.data)

    @property
    def text(self):
        return self.data.decode(errors="replace")

    def __repr__(self):
        return (f"Message({self.kind} {self.type!r} from {self.sender}"
                f"{' to ' + self.group if self.group else ''}: {self.data[:40]!r})")


def _guarded(node, fn, *args):
    """Runs a user callback on the node's thread; an exception is logged and
    counted, never let into C. Ctrl-C or sys.exit() in a callback is raised
    again once the C call returns (see _after_c)."""
    try:
        fn(*args)
    except (KeyboardInterrupt, SystemExit) as exc:
        node._raise_after = node._raise_after or exc
    except BaseException:
        node.handler_errors += 1
        _callbacks.log.exception("zcluster node %s: handler raised", node.id)


@MESH_HANDLER
def _on_message(mesh, msg, key):
    entry = _callbacks.get(key)
    if entry:
        node, fn = entry
        _guarded(node, fn, Message(msg))


def _event(name, *args):
    """Calls the node's on_<name> callback if it has one."""
    node = _callbacks.get(args[-1])
    fn = node and getattr(node, "on_" + name)
    if fn:
        _guarded(node, fn, *args[:-1])


_events = NodeEvents(
    PEER_ADDED(lambda _n, peer, key: _event("peer_added", string(peer), key)),
    PEER_REMOVED(lambda _n, peer, reason, key: _event(
        "peer_removed", string(peer), REMOVED_REASONS.get(reason, "?"), key)),
    EPOCH_FN(lambda _n, epoch, key: _event("promoted", epoch, key)),
    EPOCH_FN(lambda _n, epoch, key: _event("demoted", epoch, key)))


@KILL_FN
def _on_kill(_node, sender, code, key):
    node = _callbacks.get(key)
    if node is None:
        return
    if node.on_kill:
        _guarded(node, node.on_kill, string(sender), code)
    else:
        node._kill_code = code  # exits once C returns: see _after_c


def _send_error(what):
    err = ctypes.get_errno()
    if err == errno_codes.EHOSTUNREACH:
        return errors.NoRouteError(f"{what}: not a peer")
    if err == errno_codes.EAGAIN:
        return BlockingIOError(err, f"{what}: the peer's queue is full, retry later")
    if err in (errno_codes.EINVAL, errno_codes.EMSGSIZE):
        return errors.InvalidError(f"{what}: {errno_codes.errorcode.get(err, err)}")
    return OSError(err, f"{what} failed")


class Node(RpcMixin):
    """A cluster node. Callbacks, settable as attributes or keywords:
    on_peer_added(id), on_peer_removed(id, reason), on_promoted(epoch),
    on_demoted(epoch), on_kill(sender, code) (default: close the node and
    raise SystemExit(code) in the owner thread), on_message(msg) for messages
    of no handled type (default: kept for recv())."""

    on_peer_added = on_peer_removed = on_promoted = on_demoted = on_kill = on_message = None

    def __init__(self, id=None, *, redis=None, cluster=None, headers=None, groups=(),
                 lease_ttl=None, election=True, endpoints=None, advertise_host=None,
                 max_msg_size=None, hwm=None, rpc_threads=2, **callbacks):
        self._node = ctypes.c_void_p(lib.zc_node_new(text(id)))
        if not self._node:
            raise errors.InvalidError(f"invalid node id {id!r}")
        self._id = string(lib.zc_node_id(self._node))  # kept: still known once closed
        self._rpc = ctypes.c_void_p()
        self._key, self._handlers, self._methods = _callbacks.add(self), {}, {}
        self._owner = self._kill_code = self._raise_after = None
        self._unhandled = collections.deque()
        self.handler_errors = 0
        _open_nodes.add(self)
        try:
            for name, fn in callbacks.items():
                if not name.startswith("on_") or not hasattr(Node, name):
                    raise TypeError(f"unknown argument {name}")
                setattr(self, name, fn)
            self._configure_mesh(endpoints, advertise_host, max_msg_size, hwm)
            self._configure(redis, cluster, headers, groups, lease_ttl, election, rpc_threads)
        except BaseException:
            self.close()
            raise

    def _configure_mesh(self, endpoints, advertise_host, max_msg_size, hwm):
        """The mesh's settings (zc_mesh.h); None keeps the default."""
        mesh = lib.zc_node_mesh(self._node)
        if endpoints:
            lib.zc_mesh_set_endpoints(mesh, text(endpoints[0]), text(endpoints[1]))
        if advertise_host:
            lib.zc_mesh_set_advertise_host(mesh, text(advertise_host))
        if max_msg_size is not None:
            lib.zc_mesh_set_max_msg_size(mesh, max_msg_size)
        if hwm is not None:
            lib.zc_mesh_set_hwm(mesh, hwm)

    def _configure(self, redis, cluster, headers, groups, lease_ttl, election, threads):
        node = self._node
        if redis is not None:
            lib.zc_node_set_redis(node, text(redis))
        lib.zc_node_set_cluster(node, text(cluster))
        for key, value in (headers or {}).items():
            if lib.zc_node_set_header(node, text(key), text(value)):
                raise self._failure()
        if lease_ttl is not None:
            lib.zc_node_set_lease_ttl(node, int(lease_ttl * 1000))
        lib.zc_node_set_election(node, 1 if election else 0)
        lib.zc_node_set_events(node, ctypes.byref(_events), self._key)
        lib.zc_node_on_kill(node, _on_kill, self._key)
        for group in groups:
            self.join(group)
        self._rpc = ctypes.c_void_p(lib.zc_rpc_new(node))
        if lib.zc_rpc_set_threads(self._rpc, threads):
            raise self._rpc_failure()

    # -- life ---------------------------------------------------------------

    def start(self):
        """Binds the sockets and joins the cluster; the calling thread owns the node."""
        if lib.zc_node_start(self._alive()):
            raise self._failure()
        self._owner = threading.get_ident()
        return self

    def close(self):
        """Leaves the cluster (peers hear it at once) and frees the node; idempotent."""
        _open_nodes.discard(self)
        if self._node:
            lib.zc_node_destroy(ctypes.byref(self._node))
        if self._rpc:
            lib.zc_rpc_destroy(ctypes.byref(self._rpc))  # waits for running methods
        for key in [self._key, *self._handlers.values(), *self._methods.values()]:
            _callbacks.drop(key)
        self._handlers.clear()
        self._methods.clear()

    def __enter__(self):
        try:
            return self if self._owner else self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return not self._node

    # -- identity and cluster -----------------------------------------------

    @property
    def id(self):
        return self._id

    @property
    def cluster(self):
        return string(lib.zc_node_cluster(self._alive()))

    def peers(self):
        """The ids of the live peers."""
        return _strings(lib.zc_node_peers(self._check()))

    def __contains__(self, peer):
        return bool(lib.zc_node_peer_exists(self._check(), text(peer)))

    @property
    def leader(self):
        return bool(lib.zc_node_leader(self._check()))

    @property
    def epoch(self):
        """The fencing epoch of the current leadership as last seen."""
        return lib.zc_node_epoch(self._check())

    @property
    def redis_up(self):
        return bool(lib.zc_node_redis_up(self._check()))

    def info(self):
        """The cluster as this node sees it: {"cluster", "self", "leader", "epoch",
        "nodes": [records], "groups": {group: [{"id", "pid"}]}}."""
        raw = lib.zc_node_cluster_info(self._check())
        try:
            return json.loads(ctypes.string_at(raw))
        finally:
            libc.free(raw)

    def stats(self):
        """The mesh's counters as a dict."""
        stats = MeshStats()
        lib.zc_mesh_stats(lib.zc_node_mesh(self._check()), ctypes.byref(stats))
        return struct_dict(stats)

    def join(self, group):
        if lib.zc_node_join(self._check(starting=True), text(group)):
            raise self._failure()

    def leave(self, group):
        if lib.zc_node_leave(self._check(starting=True), text(group)):
            raise self._failure()

    # -- messages -----------------------------------------------------------

    def publish(self, type, value=b""):
        """Sends to every node: bytes as they are, other values as msgpack."""
        data = _codec.payload(value)
        if lib.zc_node_publish(self._check(), text(type), data, len(data)):
            raise _send_error("publish")

    def shout(self, group, type, value=b""):
        """Sends to the members of group."""
        data = _codec.payload(value)
        if lib.zc_node_shout(self._check(), text(group), text(type), data, len(data)):
            raise _send_error("shout")

    def whisper(self, peer, type, value=b""):
        """Sends to one peer; BlockingIOError if its queue is full."""
        data = _codec.payload(value)
        if lib.zc_node_whisper(self._check(), text(peer), text(type), data, len(data)):
            raise _send_error("whisper")

    def on(self, type, fn):
        """Calls fn(message) for every message of this type (None removes it)."""
        key = _callbacks.add((self, fn)) if fn else None
        if lib.zc_mesh_on(lib.zc_node_mesh(self._check(starting=True)), text(type),
                          _on_message if fn else MESH_HANDLER(), key):
            _callbacks.drop(key)
            raise errors.InvalidError(f"invalid message type {type!r}")
        old = self._handlers.pop(type, None)
        if key:
            self._handlers[type] = key
        if old:
            _callbacks.drop(old)
        return fn

    def handler(self, type):
        """Decorator form of on()."""
        return lambda fn: self.on(type, fn)

    def recv(self, timeout=None):
        """Runs the node until a message of no handled type arrives and returns
        it, or None after timeout seconds (None: wait forever)."""
        if self._unhandled:
            return self._unhandled.popleft()
        node = self._check()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # waits in slices: a signal may reach another thread, and Python
            # raises KeyboardInterrupt only once this one runs Python again
            left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            msg = lib.zc_node_recv(node, _ms(max(0.0, left)))
            message = Message(msg) if msg else None
            self._after_c()
            if message or (deadline is not None and time.monotonic() >= deadline):
                return message

    def run(self, timeout=None, until=None):
        """Runs the node for timeout seconds (None: forever), or until until()
        is true (checked at least every 50 ms). Messages of no handled type go
        to on_message, or are kept for recv()."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (until and until()):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            step = _SLICE if left is None else min(left, _SLICE)
            step = min(step, 0.05) if until else step
            msg = lib.zc_node_recv(self._check(), _ms(step))
            if msg:
                message = Message(msg)
                if self.on_message:
                    _guarded(self, self.on_message, message)
                else:
                    self._unhandled.append(message)
            self._after_c()

    # -- kill and confirmations ---------------------------------------------

    def kill(self, peer, code=0):
        """Asks a peer to exit with code."""
        if lib.zc_node_kill(self._check(), text(peer), int(code)):
            raise _send_error("kill")

    def confirm(self, name):
        """Sends the named confirmation to every peer."""
        if lib.zc_node_confirm(self._check(), text(name)):
            raise _send_error("confirm")

    def wait_confirmations(self, name, count, timeout):
        """Waits until count peers confirmed name; returns their ids or raises TimedOut."""
        ids = lib.zc_node_wait_confirmations(self._check(), text(name), count, _ms(timeout))
        self._after_c()
        if not ids:
            raise self._failure()
        return _strings(ids)

    def wait_peers(self, count, timeout):
        """Waits until count peers hear this node's publishes (the slow joiner:
        a publish right after start reaches nobody); raises TimedOut."""
        rc = lib.zc_node_wait_peers(self._check(), count, _ms(timeout))
        self._after_c()
        if rc:
            raise self._failure()

    # -- internals ----------------------------------------------------------

    def _alive(self):
        if not self._node:
            raise errors.StateError("the node is closed")
        return self._node

    def _check(self, starting=False):
        """The C node, for the owner thread only."""
        node = self._alive()
        if self._owner is None and not starting:
            raise errors.StateError("the node is not started")
        if self._owner is not None and self._owner != threading.get_ident():
            raise RuntimeError("a node is used only by the thread that started it")
        return node

    def _failure(self):
        return errors.error(lib.zc_node_error(self._node), string(lib.zc_node_errstr(self._node)))

    def _after_c(self):
        """Acts on what happened in callbacks during the last C call: an
        interrupt or exit, or a kill request."""
        if self._raise_after is not None:
            exc, self._raise_after = self._raise_after, None
            raise exc
        if self._kill_code is not None:
            code, self._kill_code = self._kill_code, None
            self.close()
            raise SystemExit(code)


#  Longest wait inside C in one go (see recv).
_SLICE = 0.2


def _ms(seconds):
    return -1 if seconds is None else max(0, int(seconds * 1000))


def _strings(zlist):
    """The strings of a czmq list, which is then destroyed."""
    if not zlist:
        return []
    items, item = [], lib.zlist_first(zlist)
    while item:
        items.append(string(ctypes.string_at(item)))
        item = lib.zlist_next(zlist)
    handle = ctypes.c_void_p(zlist)
    lib.zlist_destroy(ctypes.byref(handle))
    return items


@atexit.register
def _close_all():
    for node in list(_open_nodes):
        node.close()
