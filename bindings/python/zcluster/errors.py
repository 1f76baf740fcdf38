"""Exceptions: one class per zc_error_t kind (include/zc_error.h).

Every exception carries `kind` (the C number) and `kind_name` (zc_strerror's
name). RPC outcomes are subclasses of RpcError, so `except RpcError` catches
any failed call while the kinds stay apart; an RPC that timed out is both an
RpcError and a TimedOut (itself a builtin TimeoutError).
"""
from . import _lib

OK, INVALID, REDIS, MISSING, LOCKED, TYPE, TIMEOUT, CORRUPT, IO, DUPLICATE, STATE, SYSTEM, \
    UNKNOWN_METHOD, HANDLER, PEER_GONE, NO_ROUTE, UNKNOWN_CONNECTION = range(17)


class ZclusterError(Exception):
    """A zcluster call failed: `kind` says how, the message what."""
    kind = -1

    def __init__(self, message="", kind=None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.message = message

    @property
    def kind_name(self):
        return _lib.string(_lib.lib.zc_strerror(self.kind))


class InvalidError(ZclusterError, ValueError):
    kind = INVALID


class RedisError(ZclusterError):
    kind = REDIS


class MissingError(ZclusterError, LookupError):
    kind = MISSING


class LockedError(ZclusterError):
    kind = LOCKED


class WrongTypeError(ZclusterError):
    kind = TYPE


class TimedOut(ZclusterError, TimeoutError):
    kind = TIMEOUT


class CorruptError(ZclusterError):
    kind = CORRUPT


class FileError(ZclusterError):
    kind = IO


class DuplicateError(ZclusterError):
    kind = DUPLICATE


class StateError(ZclusterError):
    kind = STATE


class SystemCallError(ZclusterError):
    kind = SYSTEM


class RpcError(ZclusterError):
    """A call failed; `node` is the node that answered, if one did."""
    node = None


class UnknownMethodError(RpcError):
    kind = UNKNOWN_METHOD


class HandlerError(RpcError):
    """The remote handler failed with `code` and `message`.

    Raise it in a method handler to answer with that code and message."""
    kind = HANDLER

    def __init__(self, code=0, message=""):
        super().__init__(message)
        self.code = code

    def __str__(self):
        return f"{self.code} {self.message}"


class PeerGoneError(RpcError):
    kind = PEER_GONE


class NoRouteError(RpcError):
    kind = NO_ROUTE


class UnknownConnectionError(RpcError):
    kind = UNKNOWN_CONNECTION


class RpcTimeout(RpcError, TimedOut):
    kind = TIMEOUT


class RpcInvalidError(RpcError, InvalidError):
    kind = INVALID


_CLASSES = {cls.kind: cls for cls in (
    InvalidError, RedisError, MissingError, LockedError, WrongTypeError, TimedOut,
    CorruptError, FileError, DuplicateError, StateError, SystemCallError)}
_RPC_CLASSES = {cls.kind: cls for cls in (
    UnknownMethodError, PeerGoneError, NoRouteError, UnknownConnectionError, RpcTimeout,
    RpcInvalidError)}


def error(kind, message):
    """The exception for a failure of this kind."""
    if kind == HANDLER:
        return HandlerError(0, message)
    cls = _CLASSES.get(kind) or _RPC_CLASSES.get(kind) or ZclusterError
    return cls(message, kind) if cls is ZclusterError else cls(message)


def rpc_error(kind, message, code=0, node=None):
    """The exception for a failed RPC outcome of this kind."""
    if kind == HANDLER:
        exc = HandlerError(code, message)
    else:
        cls = _RPC_CLASSES.get(kind)
        exc = cls(message) if cls else RpcError(message, kind)
    exc.node = node
    return exc
