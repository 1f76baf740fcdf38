"""Cluster RPC (include/zc_rpc.h) as methods of Node.

A method is a Python function taking a Request and returning a msgpack-able
result. It runs on one of the node's RPC threads (Node(rpc_threads=...)),
not the node's own thread, so it must not use the node. Raising
HandlerError(code, message) answers with that code and message; any other
exception answers HANDLER_CRASHED_CODE with "ExceptionType: message" and is
logged: the caller gets a HandlerError and the node keeps serving.

Calls block the calling thread (the node's owner) while running the node:
handlers of messages that arrive meanwhile still run. Failures raise the
RpcError subclass of their kind (errors.py).
"""
import collections
import ctypes

from . import _callbacks, _codec, errors
from ._lib import METHOD_FN, RpcStats, lib, string, struct_dict, text

#  The code a method answers with when it raises something other than
#  HandlerError (an unexpected failure, as HTTP's 500).
HANDLER_CRASHED_CODE = 500

_NODE, _ALL_FIRST, _ALL_GATHER, _CONNECTION = 1, 2, 3, 4


class Request:
    """One call as its method sees it."""
    __slots__ = ("caller", "method", "data")

    def __init__(self, caller, method, data):
        self.caller, self.method, self.data = caller, method, data

    @property
    def args(self):
        """The call's arguments, unpacked (None if it sent none)."""
        return _codec.unpack(self.data)


#  One node's successful answer (call_all(first=True)).
Reply = collections.namedtuple("Reply", "node value")


class Gathered:
    """Every answer of a call to all nodes: values by node, errors by node
    (RpcError instances), and the nodes that did not answer in time."""

    def __init__(self, values, errors_, missing):
        self.values, self.errors, self.missing = values, errors_, missing

    @property
    def ok(self):
        return not self.errors and not self.missing

    def __repr__(self):
        return f"Gathered(values={self.values!r}, errors={self.errors!r}, missing={self.missing!r})"


def _answer(request, fn):
    """Runs a method and answers; nothing escapes into C."""
    try:
        data = _codec.copy(lib.zc_rpc_request_args(request), lib.zc_rpc_request_size(request))
        req = Request(string(lib.zc_rpc_request_caller(request)),
                      string(lib.zc_rpc_request_method(request)), data)
        result = _codec.call_payload(fn(req))
        lib.zc_rpc_respond(request, result, len(result))
    except HandlerError as exc:
        lib.zc_rpc_fail(request, int(exc.code), str(exc.message).encode())
    except BaseException as exc:  # a handler must never take the node down
        _callbacks.log.exception("rpc method %s raised", string(lib.zc_rpc_request_method(request)))
        message = f"{type(exc).__name__}: {exc}"
        lib.zc_rpc_fail(request, HANDLER_CRASHED_CODE, message.encode(errors="replace"))


HandlerError = errors.HandlerError


@METHOD_FN
def _on_request(request, key):
    fn = _callbacks.get(key)
    if fn is None:
        lib.zc_rpc_fail(request, HANDLER_CRASHED_CODE, b"method removed")
        return
    _answer(request, fn)


def _result(reply):
    """A successful reply's result; CorruptError if a peer sent bytes that are
    not msgpack (bad input from the network never escapes as a msgpack error)."""
    try:
        return _codec.unpack(_codec.copy(reply.data, reply.size))
    except Exception as exc:
        raise errors.CorruptError(f"{string(reply.node)} answered a result that is not "
                                  f"msgpack: {exc}") from None


def _reply_error(reply):
    return errors.rpc_error(reply.status, string(reply.error) or "", reply.error_code,
                            string(reply.node))


class RpcMixin:
    """The RPC half of Node; expects self._rpc, self._methods, self._check()."""

    def register(self, name, fn):
        """Makes fn(request) callable by peers as `name` (before or after start)."""
        self._check(starting=True)
        key = _callbacks.add(fn)
        if lib.zc_rpc_register(self._rpc, text(name), _on_request, key):
            _callbacks.drop(key)
            raise self._rpc_failure()
        self._methods[name] = key
        return fn

    def method(self, name=None):
        """Decorator form of register; the name defaults to the function's."""
        def wrap(fn):
            return self.register(name or fn.__name__, fn)
        return wrap

    def call(self, node, method, args=None, timeout=None):
        """Calls method on one node and returns its result."""
        return self._call(_NODE, node, method, args, timeout, self._single)

    def call_connection(self, connection, method, args=None, timeout=None):
        """Calls method on the node holding a connection id."""
        return self._call(_CONNECTION, connection, method, args, timeout, self._single)

    def call_all(self, method, args=None, timeout=None, first=False):
        """Calls method on every peer. first: the first success as a Reply
        (raises if none came); else a Gathered of every answer."""
        if first:
            return self._call(_ALL_FIRST, None, method, args, timeout, self._first)
        return self._call(_ALL_GATHER, None, method, args, timeout, self._gathered)

    def add_connection(self, connection):
        """Records in Redis that this node holds a connection id."""
        self._check()
        if lib.zc_rpc_connection_add(self._rpc, text(connection)):
            raise self._rpc_failure()

    def remove_connection(self, connection):
        """Forgets a connection id this node holds."""
        self._check()
        if lib.zc_rpc_connection_remove(self._rpc, text(connection)):
            raise self._rpc_failure()

    def rpc_stats(self):
        """The node's RPC counters as a dict."""
        stats = RpcStats()
        lib.zc_rpc_stats(self._rpc, ctypes.byref(stats))
        return struct_dict(stats)

    def _rpc_failure(self):
        return errors.error(lib.zc_rpc_error(self._rpc), string(lib.zc_rpc_errstr(self._rpc)))

    def _call(self, target, to, method, args, timeout, outcome):
        self._check()
        data = _codec.call_payload(args)
        ms = 0 if timeout is None else max(1, int(timeout * 1000))
        call = ctypes.c_void_p(lib.zc_rpc_call(self._rpc, target, text(to), text(method), data,
                                               len(data), ms))
        try:
            return outcome(call)
        finally:
            lib.zc_rpc_call_destroy(ctypes.byref(call))
            self._after_c()

    @staticmethod
    def _replies(call):
        return [lib.zc_rpc_call_reply(call, i).contents
                for i in range(lib.zc_rpc_call_replies(call))]

    @staticmethod
    def _status_error(call):
        status = lib.zc_rpc_call_status(call)
        return errors.rpc_error(status, string(lib.zc_strerror(status)))

    def _single(self, call):
        for reply in self._replies(call):
            if reply.status == errors.OK:
                return _result(reply)
            raise _reply_error(reply)
        raise self._status_error(call)

    def _first(self, call):
        for reply in self._replies(call):
            if reply.status == errors.OK:
                return Reply(string(reply.node),
                             _result(reply))
        replies = self._replies(call)
        raise _reply_error(replies[0]) if replies else self._status_error(call)

    def _gathered(self, call):
        if lib.zc_rpc_call_status(call) == errors.INVALID:
            raise self._status_error(call)
        values, failures = {}, {}
        for reply in self._replies(call):
            if reply.status == errors.OK:
                values[string(reply.node)] = _result(reply)
            else:
                failures[string(reply.node)] = _reply_error(reply)
        missing = [string(lib.zc_rpc_call_missing_node(call, i))
                   for i in range(lib.zc_rpc_call_missing(call))]
        return Gathered(values, failures, missing)

