"""Payloads: bytes go as they are, anything else as one msgpack object.

Cache values, RPC arguments and results, and job arguments are msgpack on
the wire (docs/PROTOCOL.md), so peers in any language read them; message
payloads are opaque, so `bytes` are sent untouched and other values packed.
"""
import ctypes

import msgpack


def pack(value):
    """One msgpack object."""
    return msgpack.packb(value, use_bin_type=True)


def unpack(data):
    """The value of one msgpack object (None for no bytes at all)."""
    if not data:
        return None
    return msgpack.unpackb(data, raw=False, unicode_errors="surrogateescape",
                           strict_map_key=False)


def payload(value):
    """A message payload: bytes-like as is, other values packed."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return pack(value)


def call_payload(value):
    """RPC arguments or result: None is no bytes (as the built-ins use), else packed."""
    return b"" if value is None else pack(value)


def copy(pointer, size):
    """Bytes copied from C memory."""
    return ctypes.string_at(pointer, size) if size else b""
