"""C callbacks into Python, made safe against freed objects.

The C library keeps a function pointer and a `void *arg` for every callback.
Here each function pointer is one module-level ctypes thunk that lives as
long as the interpreter, and `arg` is a number, a key into a table of the
Python callables. A C object is destroyed before its keys are dropped, and
a key that is gone is ignored, so no callback can reach a Python object
that was freed, whatever the C side still has queued.

ctypes thunks take the GIL themselves when a C thread calls them; C calls
made through ctypes release it, so a C function that waits for its handler
threads (rpc, worker stop) never deadlocks against them.
"""
import itertools
import logging

log = logging.getLogger("zcluster")

_table = {}
_keys = itertools.count(1)


def add(target):
    """Keeps target under a new key and returns the key (the C `arg`)."""
    key = next(_keys)
    _table[key] = target
    return key


def drop(key):
    _table.pop(key, None)


def get(key):
    """The callable under key, or None once dropped."""
    return _table.get(key)
