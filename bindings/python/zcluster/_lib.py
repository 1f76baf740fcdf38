"""Finding and describing libzcluster for ctypes.

The library is found, in order: the path in $ZCLUSTER_LIB; a non-sanitized
build directory of the checkout this package sits in (build-py, build, or
any other build*/ whose CMakeCache.txt does not say ZC_SANITIZE=ON: an ASan
library cannot be loaded into an unsanitized interpreter); the loader's own
search path (an installed libzcluster.so.0, LD_LIBRARY_PATH).

Every function the package calls is declared once, below, with its C
argument and result types, so a wrong call fails in Python rather than in C.
"""
import ctypes
import ctypes.util
import glob
import os

from ctypes import c_char_p, c_int, c_int64, c_size_t, c_uint64, c_void_p
P = ctypes.POINTER


def _sanitized(build_dir):
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as cache:
            return any(line.strip() == "ZC_SANITIZE:BOOL=ON" for line in cache)
    except OSError:
        return False


def _checkout_candidates():
    """Libraries built in the checkout around this package, best first."""
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    if not os.path.exists(os.path.join(root, "include", "zcluster.h")):
        return []
    dirs = [os.path.join(root, "build-py"), os.path.join(root, "build")]
    dirs += sorted(d for d in glob.glob(os.path.join(root, "build*")) if d not in dirs)
    return [os.path.join(d, "libzcluster.so") for d in dirs
            if os.path.exists(os.path.join(d, "libzcluster.so")) and not _sanitized(d)]


def find_library():
    """Returns the path or name of the libzcluster to load."""
    explicit = os.environ.get("ZCLUSTER_LIB")
    if explicit:
        return explicit
    local = _checkout_candidates()
    if local:
        return local[0]
    return ctypes.util.find_library("zcluster") or "libzcluster.so.0"


path = find_library()
try:
    lib = ctypes.CDLL(path, use_errno=True)
except OSError as exc:
    raise ImportError(
        f"zcluster: cannot load libzcluster ({path}): {exc}; set ZCLUSTER_LIB to a "
        "non-sanitized libzcluster.so or install the library") from exc
#  Python keeps SIGINT and SIGTERM: CZMQ would otherwise install handlers of
#  its own when the first socket is made, and Ctrl-C would only set a flag
#  the library never reads.
lib.zsys_handler_set.argtypes = [c_void_p]
lib.zsys_handler_set.restype = None
lib.zsys_handler_set(None)
libc = ctypes.CDLL(None)
libc.free.argtypes = [c_void_p]
libc.free.restype = None


class RpcReply(ctypes.Structure):
    _fields_ = [("node", c_char_p), ("status", c_int), ("error_code", c_int),
                ("error", c_char_p), ("data", c_void_p), ("size", c_size_t)]


HISTOGRAM_BUCKETS = 14  # ZC_HISTOGRAM_BUCKETS


class Histogram(ctypes.Structure):
    _fields_ = [("buckets", c_uint64 * HISTOGRAM_BUCKETS), ("count", c_uint64),
                ("sum", ctypes.c_double)]


def struct_dict(struct):
    """A stats struct as a dict; a histogram as {"buckets": [...], "count", "sum"}."""
    out = {}
    for name, _ in struct._fields_:
        value = getattr(struct, name)
        if isinstance(value, Histogram):
            value = {"buckets": list(value.buckets), "count": value.count, "sum": value.sum}
        out[name] = value
    return out


class RpcStats(ctypes.Structure):
    _fields_ = [(name, c_uint64) for name in
                ("calls_started", "calls_ok", "calls_failed", "calls_timed_out",
                 "requests_handled", "late_replies")] + [("latency", Histogram)]


class MeshStats(ctypes.Structure):
    _fields_ = [(name, c_uint64) for name in
                ("sent_public", "sent_group", "sent_private", "sent_request", "sent_reply",
                 "recv_public", "recv_group", "recv_private", "recv_request", "recv_reply",
                 "bytes_sent", "bytes_received", "lost", "malformed", "bad_version",
                 "oversized", "send_dropped", "no_route", "peers_lost", "refused")]


class LoadOpts(ctypes.Structure):
    _fields_ = [("slide_ms", c_int64), ("wait_ms", c_int64)]


class CacheEntry(ctypes.Structure):
    _fields_ = [("key", c_char_p), ("value", c_void_p), ("size", c_size_t),
                ("ttl_ms", c_int64), ("rc", c_int)]


class JobOpts(ctypes.Structure):
    _fields_ = [("id", c_char_p), ("max_attempts", c_int), ("backoff_ms", c_int64),
                ("timeout_ms", c_int64)]


class QueueItem(ctypes.Structure):
    _fields_ = [("args", c_void_p), ("args_size", c_size_t), ("id", c_char_p)]


class QueueStats(ctypes.Structure):
    _fields_ = [(name, c_int64) for name in
                ("queued", "delayed", "inflight", "processed", "failed", "failed_list",
                 "retried", "requeued", "lost_acks")]


class QueueFailure(ctypes.Structure):
    _fields_ = [("id", ctypes.c_char * 256), ("task", ctypes.c_char * 101),
                ("error", ctypes.c_char * 256), ("attempts", c_int), ("failed_ms", c_int64)]


class WorkerStats(ctypes.Structure):
    _fields_ = [("claimed", c_uint64), ("succeeded", c_uint64), ("failed", c_uint64),
                ("timed_out", c_uint64), ("lost", c_uint64), ("released", c_uint64),
                ("running", c_uint64), ("scheduler", c_int), ("lease_lost", c_uint64),
                ("errors", c_uint64), ("executing", c_uint64), ("run_time", Histogram)]


#  Callback types (the C typedefs). ctypes makes a thunk take the GIL itself.
MESH_HANDLER = ctypes.CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)
PEER_ADDED = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)
PEER_REMOVED = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_void_p)
EPOCH_FN = ctypes.CFUNCTYPE(None, c_void_p, c_uint64, c_void_p)
KILL_FN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_void_p)
METHOD_FN = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)
TASK_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
FINISHED_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_void_p)


class NodeEvents(ctypes.Structure):
    _fields_ = [("peer_added", PEER_ADDED), ("peer_removed", PEER_REMOVED),
                ("promoted", EPOCH_FN), ("demoted", EPOCH_FN)]


_PROTOTYPES = {
    # errors, log
    "zc_strerror": (c_char_p, [c_int]),
    "zc_log": (None, [c_int, c_char_p, c_char_p]),
    # czmq lists handed out by the node
    "zlist_first": (c_void_p, [c_void_p]),
    "zlist_next": (c_void_p, [c_void_p]),
    "zlist_destroy": (None, [P(c_void_p)]),
    # node
    "zc_node_new": (c_void_p, [c_char_p]),
    "zc_node_destroy": (None, [P(c_void_p)]),
    "zc_node_error": (c_int, [c_void_p]),
    "zc_node_errstr": (c_char_p, [c_void_p]),
    "zc_node_set_redis": (None, [c_void_p, c_char_p]),
    "zc_node_set_cluster": (None, [c_void_p, c_char_p]),
    "zc_node_set_header": (c_int, [c_void_p, c_char_p, c_char_p]),
    "zc_node_set_lease_ttl": (None, [c_void_p, c_int]),
    "zc_node_set_election": (None, [c_void_p, c_int]),
    "zc_node_set_events": (None, [c_void_p, P(NodeEvents), c_void_p]),
    "zc_node_on_kill": (None, [c_void_p, KILL_FN, c_void_p]),
    "zc_node_mesh": (c_void_p, [c_void_p]),
    "zc_node_start": (c_int, [c_void_p]),
    "zc_node_id": (c_char_p, [c_void_p]),
    "zc_node_cluster": (c_char_p, [c_void_p]),
    "zc_node_join": (c_int, [c_void_p, c_char_p]),
    "zc_node_leave": (c_int, [c_void_p, c_char_p]),
    "zc_node_publish": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "zc_node_shout": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "zc_node_whisper": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "zc_node_recv": (c_void_p, [c_void_p, c_int]),
    "zc_node_peers": (c_void_p, [c_void_p]),
    "zc_node_peer_exists": (c_int, [c_void_p, c_char_p]),
    "zc_node_peer_count": (c_size_t, [c_void_p]),
    "zc_node_leader": (c_int, [c_void_p]),
    "zc_node_epoch": (c_uint64, [c_void_p]),
    "zc_node_redis_up": (c_int, [c_void_p]),
    "zc_node_cluster_info": (c_void_p, [c_void_p]),
    "zc_node_kill": (c_int, [c_void_p, c_char_p, c_int]),
    "zc_node_confirm": (c_int, [c_void_p, c_char_p]),
    "zc_node_wait_confirmations": (c_void_p, [c_void_p, c_char_p, c_size_t, c_int]),
    "zc_node_wait_peers": (c_int, [c_void_p, c_size_t, c_int]),
    # mesh (endpoints, handlers, stats) and received messages
    "zc_mesh_set_endpoints": (None, [c_void_p, c_char_p, c_char_p]),
    "zc_mesh_set_advertise_host": (None, [c_void_p, c_char_p]),
    "zc_mesh_set_max_msg_size": (None, [c_void_p, c_size_t]),
    "zc_mesh_set_hwm": (None, [c_void_p, c_int]),
    "zc_mesh_on": (c_int, [c_void_p, c_char_p, MESH_HANDLER, c_void_p]),
    "zc_mesh_stats": (None, [c_void_p, P(MeshStats)]),
    "zc_msg_kind": (c_int, [c_void_p]),
    "zc_msg_type": (c_char_p, [c_void_p]),
    "zc_msg_sender": (c_char_p, [c_void_p]),
    "zc_msg_group": (c_char_p, [c_void_p]),
    "zc_msg_seq": (c_uint64, [c_void_p]),
    "zc_msg_data": (c_void_p, [c_void_p]),
    "zc_msg_size": (c_size_t, [c_void_p]),
    # rpc
    "zc_rpc_new": (c_void_p, [c_void_p]),
    "zc_rpc_destroy": (None, [P(c_void_p)]),
    "zc_rpc_error": (c_int, [c_void_p]),
    "zc_rpc_errstr": (c_char_p, [c_void_p]),
    "zc_rpc_set_threads": (c_int, [c_void_p, c_int]),
    "zc_rpc_register": (c_int, [c_void_p, c_char_p, METHOD_FN, c_void_p]),
    "zc_rpc_request_caller": (c_char_p, [c_void_p]),
    "zc_rpc_request_method": (c_char_p, [c_void_p]),
    "zc_rpc_request_args": (c_void_p, [c_void_p]),
    "zc_rpc_request_size": (c_size_t, [c_void_p]),
    "zc_rpc_respond": (None, [c_void_p, c_char_p, c_size_t]),
    "zc_rpc_fail": (None, [c_void_p, c_int, c_char_p]),
    "zc_rpc_call": (c_void_p, [c_void_p, c_int, c_char_p, c_char_p, c_char_p, c_size_t, c_int]),
    "zc_rpc_call_status": (c_int, [c_void_p]),
    "zc_rpc_call_replies": (c_size_t, [c_void_p]),
    "zc_rpc_call_reply": (P(RpcReply), [c_void_p, c_size_t]),
    "zc_rpc_call_missing": (c_size_t, [c_void_p]),
    "zc_rpc_call_missing_node": (c_char_p, [c_void_p, c_size_t]),
    "zc_rpc_call_destroy": (None, [P(c_void_p)]),
    "zc_rpc_connection_add": (c_int, [c_void_p, c_char_p]),
    "zc_rpc_connection_remove": (c_int, [c_void_p, c_char_p]),
    "zc_rpc_stats": (None, [c_void_p, P(RpcStats)]),
    # cache
    "zc_cache_new": (c_void_p, [c_char_p, c_char_p, c_char_p]),
    "zc_cache_destroy": (None, [P(c_void_p)]),
    "zc_cache_owner": (c_char_p, [c_void_p]),
    "zc_cache_cluster": (c_char_p, [c_void_p]),
    "zc_cache_error": (c_int, [c_void_p]),
    "zc_cache_errstr": (c_char_p, [c_void_p]),
    "zc_cache_save": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t, c_int64]),
    "zc_cache_load": (c_int, [c_void_p, c_char_p, P(LoadOpts), P(c_void_p), P(c_size_t)]),
    "zc_cache_destroy_key": (c_int, [c_void_p, c_char_p]),
    "zc_cache_ttl": (c_int, [c_void_p, c_char_p, P(c_int64)]),
    "zc_cache_push": (c_int, [c_void_p, c_char_p, c_char_p, c_size_t]),
    "zc_cache_pop": (c_int, [c_void_p, c_char_p, P(c_void_p), P(c_size_t)]),
    "zc_cache_pop_wait": (c_int, [c_void_p, c_char_p, c_int64, P(c_void_p), P(c_size_t)]),
    "zc_cache_length": (c_int, [c_void_p, c_char_p, P(c_size_t)]),
    "zc_cache_lock": (c_int, [c_void_p, c_char_p, c_int64]),
    "zc_cache_unlock": (c_int, [c_void_p, c_char_p]),
    "zc_cache_locked": (c_int, [c_void_p, c_char_p, P(c_void_p)]),
    "zc_cache_keys": (c_int, [c_void_p, c_char_p, P(P(c_char_p)), P(c_size_t)]),
    "zc_cache_keys_free": (None, [P(P(c_char_p))]),
    "zc_cache_size": (c_int, [c_void_p, P(c_size_t)]),
    "zc_cache_clear": (c_int, [c_void_p, P(c_size_t)]),
    "zc_cache_dump": (c_int, [c_void_p, c_char_p, P(c_size_t)]),
    "zc_cache_restore": (c_int, [c_void_p, c_char_p, P(c_size_t)]),
    "zc_cache_save_many": (c_int, [c_void_p, P(CacheEntry), c_size_t]),
    "zc_cache_load_many": (c_int, [c_void_p, P(CacheEntry), c_size_t, P(LoadOpts)]),
    # queue
    "zc_queue_new": (c_void_p, [c_char_p, c_char_p]),
    "zc_queue_destroy": (None, [P(c_void_p)]),
    "zc_queue_error": (c_int, [c_void_p]),
    "zc_queue_errstr": (c_char_p, [c_void_p]),
    "zc_queue_cluster": (c_char_p, [c_void_p]),
    "zc_queue_now_ms": (c_int64, [c_void_p]),
    "zc_queue_enqueue": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, P(JobOpts),
                                 c_char_p]),
    "zc_queue_enqueue_at": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, c_int64,
                                    P(JobOpts), c_char_p]),
    "zc_queue_enqueue_in": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, c_int64,
                                    P(JobOpts), c_char_p]),
    "zc_queue_enqueue_many": (c_int, [c_void_p, c_char_p, c_char_p, P(QueueItem), c_size_t,
                                      P(JobOpts), P(c_int)]),
    "zc_queue_every": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p, c_char_p, c_size_t,
                               c_int64, P(JobOpts)]),
    "zc_queue_every_remove": (c_int, [c_void_p, c_char_p]),
    "zc_queue_stats": (c_int, [c_void_p, c_char_p, P(QueueStats)]),
    "zc_queue_failed": (c_int, [c_void_p, c_char_p, P(QueueFailure), c_int]),
    "zc_queue_retry": (c_int, [c_void_p, c_char_p, c_char_p]),
    "zc_queue_delete": (c_int64, [c_void_p, c_char_p]),
    "zc_queue_requeue_node": (c_int64, [c_void_p, c_char_p]),
    # worker and jobs
    "zc_queue_worker_new": (c_void_p, [c_void_p, c_char_p]),
    "zc_queue_worker_destroy": (None, [P(c_void_p)]),
    "zc_queue_worker_error": (c_int, [c_void_p]),
    "zc_queue_worker_errstr": (c_char_p, [c_void_p]),
    "zc_queue_worker_id": (c_char_p, [c_void_p]),
    "zc_queue_worker_register": (c_int, [c_void_p, c_char_p, TASK_FN, c_void_p]),
    "zc_queue_worker_add_queue": (c_int, [c_void_p, c_char_p]),
    "zc_queue_worker_set_concurrency": (None, [c_void_p, c_int]),
    "zc_queue_worker_set_threads": (None, [c_void_p, c_int]),
    "zc_queue_worker_set_lease": (None, [c_void_p, c_int]),
    "zc_queue_worker_on_finish": (None, [c_void_p, FINISHED_FN, c_void_p]),
    "zc_queue_worker_start": (c_int, [c_void_p]),
    "zc_queue_worker_stop": (None, [c_void_p]),
    "zc_queue_worker_stats": (None, [c_void_p, P(WorkerStats)]),
    "zc_job_id": (c_char_p, [c_void_p]),
    "zc_job_queue": (c_char_p, [c_void_p]),
    "zc_job_task": (c_char_p, [c_void_p]),
    "zc_job_args": (c_void_p, [c_void_p, P(c_size_t)]),
    "zc_job_attempt": (c_int, [c_void_p]),
    "zc_job_lost": (c_int, [c_void_p]),
    "zc_job_cancelled": (c_int, [c_void_p]),
    "zc_job_error": (c_int, [c_void_p]),
    "zc_job_errstr": (c_char_p, [c_void_p]),
}

for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes

#  Variadic: only the fixed arguments are declared (pointers must be, or
#  they pass as C ints); the rest go as given, here always one char *.
lib.zc_job_set_error.restype = None
lib.zc_job_set_error.argtypes = [c_void_p, c_char_p]


def text(value):
    """A C string argument from str or None."""
    return None if value is None else value.encode()


def string(value):
    """A Python str from a C string result (None stays None)."""
    return None if value is None else value.decode(errors="surrogateescape")
