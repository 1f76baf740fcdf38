"""zcluster: the Python binding of libzcluster (ctypes; see README.md).

    import zcluster
    with zcluster.Node(redis="redis://127.0.0.1:6379") as node:
        node.publish("hello", {"n": 1})
"""
from ._lib import path as library_path
from .cache import Cache
from .errors import (CorruptError, DuplicateError, FileError, HandlerError, InvalidError,
                     LockedError, MissingError, NoRouteError, PeerGoneError, RedisError,
                     RpcError, RpcInvalidError, RpcTimeout, StateError, SystemCallError,
                     TimedOut, UnknownConnectionError, UnknownMethodError, WrongTypeError,
                     ZclusterError)
from .node import Message, Node
from .queue import Job, Queue, Worker
from .rpc import HANDLER_CRASHED_CODE, Gathered, Reply, Request

__all__ = [
    "Node", "Message", "Request", "Reply", "Gathered", "Cache", "Queue", "Worker", "Job",
    "HANDLER_CRASHED_CODE", "library_path", "ZclusterError", "InvalidError", "RedisError",
    "MissingError", "LockedError", "WrongTypeError", "TimedOut", "CorruptError", "FileError",
    "DuplicateError", "StateError", "SystemCallError", "RpcError", "UnknownMethodError",
    "HandlerError", "PeerGoneError", "NoRouteError", "UnknownConnectionError", "RpcTimeout",
    "RpcInvalidError",
]
