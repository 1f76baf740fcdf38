"""Cache: the cluster's shared cache in Redis (include/zc_cache.h).

Values are stored as msgpack (any msgpack-able Python value) so peers in any
language read them. Times are in seconds (floats allowed). Failures raise
the error of their kind: MissingError, LockedError, WrongTypeError,
RedisError, TimedOut, CorruptError, FileError, InvalidError.

A Cache belongs to one thread at a time, as in C.
"""
import ctypes

from . import _codec, errors
from ._lib import CacheEntry, LoadOpts, lib, libc, string, text


def _ms(seconds):
    return 0 if seconds is None else max(1, int(seconds * 1000))


class Cache:
    def __init__(self, redis=None, cluster=None, owner=None):
        """On the Redis at the URL redis ($ZC_REDIS_URL), for cluster
        ($ZC_CLUSTER, else "zcluster"), locking as node owner ($ZC_NODE_ID,
        else generated). Connects on first use."""
        self._cache = ctypes.c_void_p(lib.zc_cache_new(text(redis), text(cluster), text(owner)))
        if not self._cache:
            raise errors.InvalidError("no usable Redis URL, or an invalid cluster or owner name")

    def close(self):
        if self._cache:
            lib.zc_cache_destroy(ctypes.byref(self._cache))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def owner(self):
        return string(lib.zc_cache_owner(self._alive()))

    @property
    def cluster(self):
        return string(lib.zc_cache_cluster(self._alive()))

    def save(self, key, value, ttl=None):
        """Stores value under key, expiring after ttl seconds (None: never)."""
        data = _codec.pack(value)
        self._do(lib.zc_cache_save(self._alive(), text(key), data, len(data), _ms(ttl)))

    def load(self, key, slide=None, wait=None):
        """The value under key. slide: give it this TTL again from now;
        wait: wait this long for another node's lock to clear."""
        opts = LoadOpts(_ms(slide), _ms(wait))
        return self._take(lambda value, size: lib.zc_cache_load(
            self._alive(), text(key), ctypes.byref(opts), value, size))

    def get(self, key, default=None):
        """The value under key, or default if there is none."""
        try:
            return self.load(key)
        except errors.MissingError:
            return default

    def delete(self, key):
        """Removes a value or list."""
        self._do(lib.zc_cache_destroy_key(self._alive(), text(key)))

    def ttl(self, key):
        """Seconds left before key expires, or None if it never does."""
        ms = ctypes.c_int64()
        self._do(lib.zc_cache_ttl(self._alive(), text(key), ctypes.byref(ms)))
        return None if ms.value < 0 else ms.value / 1000

    def push(self, key, value):
        """Appends value to the list at key."""
        data = _codec.pack(value)
        self._do(lib.zc_cache_push(self._alive(), text(key), data, len(data)))

    def pop(self, key, timeout=None):
        """Removes and returns the list's first item; with a timeout, waits
        that long for one (TimedOut), else MissingError if it is empty."""
        if timeout is None:
            return self._take(lambda value, size: lib.zc_cache_pop(
                self._alive(), text(key), value, size))
        return self._take(lambda value, size: lib.zc_cache_pop_wait(
            self._alive(), text(key), _ms(timeout), value, size))

    def length(self, key):
        """Items in the list at key (0 if absent)."""
        return self._count(lib.zc_cache_length, text(key))

    def lock(self, key, ttl):
        """Takes (or extends) key's lock for ttl seconds; LockedError if another node has it."""
        self._do(lib.zc_cache_lock(self._alive(), text(key), _ms(ttl)))

    def unlock(self, key):
        self._do(lib.zc_cache_unlock(self._alive(), text(key)))

    def locked(self, key):
        """The id of the node holding key's lock, or None."""
        owner = ctypes.c_void_p()
        self._do(lib.zc_cache_locked(self._alive(), text(key), ctypes.byref(owner)))
        return _take_string(owner)

    def keys(self, pattern=None):
        """The keys matching a Redis glob (all if None)."""
        array, count = ctypes.POINTER(ctypes.c_char_p)(), ctypes.c_size_t()
        self._do(lib.zc_cache_keys(self._alive(), text(pattern), ctypes.byref(array),
                                   ctypes.byref(count)))
        keys = [string(array[i]) for i in range(count.value)]
        lib.zc_cache_keys_free(ctypes.byref(array))
        return keys

    def __len__(self):
        return self._count(lib.zc_cache_size)

    def clear(self):
        """Removes every value and list not locked by another node; returns how many."""
        return self._count(lib.zc_cache_clear)

    def dump(self, path):
        """Writes every value and list with its TTL to path; returns the count."""
        return self._count(lib.zc_cache_dump, text(str(path)))

    def restore(self, path):
        """Writes a dump's keys back (see zc_cache_restore); returns the count."""
        return self._count(lib.zc_cache_restore, text(str(path)))

    def save_many(self, values, ttl=None):
        """Saves a {key: value} mapping in a few round trips."""
        keep = [(text(key), _codec.pack(value)) for key, value in values.items()]
        entries = (CacheEntry * len(keep))()
        for entry, (key, data) in zip(entries, keep):
            entry.key, entry.size, entry.ttl_ms = key, len(data), _ms(ttl)
            entry.value = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p)
        self._do(lib.zc_cache_save_many(self._alive(), entries, len(keep)))

    def load_many(self, keys):
        """A {key: value} dict of the keys that have a value."""
        names = [text(key) for key in keys]
        entries = (CacheEntry * len(names))()
        for entry, name in zip(entries, names):
            entry.key = name
        rc = lib.zc_cache_load_many(self._alive(), entries, len(names), None)
        found = {}
        for key, entry in zip(keys, entries):
            if entry.value:
                found[key] = _codec.unpack(_codec.copy(entry.value, entry.size))
                libc.free(entry.value)
        if rc and any(e.rc not in (errors.OK, errors.MISSING) for e in entries):
            raise self._failure()
        return found

    # -- internals ----------------------------------------------------------

    def _alive(self):
        if not self._cache:
            raise errors.StateError("the cache is closed")
        return self._cache

    def _failure(self):
        return errors.error(lib.zc_cache_error(self._cache),
                            string(lib.zc_cache_errstr(self._cache)))

    def _do(self, rc):
        if rc:
            raise self._failure()

    def _count(self, fn, *args):
        count = ctypes.c_size_t()
        self._do(fn(self._alive(), *args, ctypes.byref(count)))
        return count.value

    def _take(self, fn):
        """Runs fn(value_p, size_p) and returns the unpacked malloc'd value it set."""
        value, size = ctypes.c_void_p(), ctypes.c_size_t()
        self._do(fn(ctypes.byref(value), ctypes.byref(size)))
        try:
            return _codec.unpack(_codec.copy(value, size.value))
        finally:
            libc.free(value)


def _take_string(pointer):
    """A str from a malloc'd C string (freed), or None."""
    if not pointer:
        return None
    try:
        return string(ctypes.string_at(pointer))
    finally:
        libc.free(pointer)
