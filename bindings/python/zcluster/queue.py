"""Queue and Worker: the cluster's task queue (include/zc_queue.h,
zc_queue_worker.h, zc_job.h).

Job arguments are msgpack (any msgpack-able value). A task function takes a
Job and runs on one of the worker's C threads (holding the GIL while it
runs Python): returning succeeds, raising fails the run with
"ExceptionType: message" as the job's error (retried with backoff, then
the failed list), and never reaches C. Times are in seconds.
"""
import atexit
import ctypes

from . import _callbacks, _codec, errors
from ._lib import (FINISHED_FN, TASK_FN, JobOpts, QueueFailure, QueueItem, QueueStats,
                   WorkerStats, lib, string, struct_dict, text)

_JOB_ID_SIZE = 256


def _ms(seconds):
    return 0 if seconds is None else max(1, int(seconds * 1000))


def _opts(id=None, max_attempts=None, backoff=None, timeout=None):
    return JobOpts(text(id), max_attempts or 0, _ms(backoff), _ms(timeout))


class Queue:
    """Puts jobs on queues and administers them; one thread at a time."""

    def __init__(self, redis=None, cluster=None):
        self._queue = ctypes.c_void_p(lib.zc_queue_new(text(redis), text(cluster)))
        if not self._queue:
            raise errors.InvalidError("no usable Redis URL, or an invalid cluster name")

    def close(self):
        if self._queue:
            lib.zc_queue_destroy(ctypes.byref(self._queue))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def cluster(self):
        return string(lib.zc_queue_cluster(self._alive()))

    def now(self):
        """Redis's clock, in seconds since the epoch."""
        ms = lib.zc_queue_now_ms(self._alive())
        if ms < 0:
            raise self._failure()
        return ms / 1000

    def enqueue(self, queue, task, args=None, *, id=None, at=None, delay=None,
                max_attempts=None, backoff=None, timeout=None):
        """Puts a job on queue, to run now, at `at` (Redis time, seconds since
        the epoch) or after `delay` seconds; returns its id. DuplicateError
        if a live job already has `id`."""
        data = _codec.call_payload(args)
        opts, out = _opts(id, max_attempts, backoff, timeout), ctypes.create_string_buffer(
            _JOB_ID_SIZE)
        q, name, fixed = self._alive(), text(queue), (text(task), data, len(data))
        if at is not None:
            rc = lib.zc_queue_enqueue_at(q, name, *fixed, int(at * 1000), ctypes.byref(opts), out)
        elif delay is not None:
            rc = lib.zc_queue_enqueue_in(q, name, *fixed, _ms(delay), ctypes.byref(opts), out)
        else:
            rc = lib.zc_queue_enqueue(q, name, *fixed, ctypes.byref(opts), out)
        if rc:
            raise self._failure()
        return string(out.value)

    def enqueue_many(self, queue, task, args_list, **options):
        """Enqueues one job per item of args_list; returns how many went in."""
        data = [_codec.call_payload(args) for args in args_list]
        items = (QueueItem * len(data))()
        for item, payload in zip(items, data):
            item.args = ctypes.cast(ctypes.c_char_p(payload), ctypes.c_void_p)
            item.args_size = len(payload)
        opts = _opts(**options)
        count = lib.zc_queue_enqueue_many(self._alive(), text(queue), text(task), items,
                                          len(data), ctypes.byref(opts), None)
        if count < 0:
            raise self._failure()
        return count

    def every(self, name, queue, task, interval, args=None, **options):
        """Enqueues a job of task every interval seconds, from one node only."""
        data = _codec.call_payload(args)
        opts = _opts(**options)
        if lib.zc_queue_every(self._alive(), text(name), text(queue), text(task), data,
                              len(data), _ms(interval), ctypes.byref(opts)):
            raise self._failure()

    def every_remove(self, name):
        """Removes a recurring task; returns True if it existed."""
        return bool(self._count(lib.zc_queue_every_remove(self._alive(), text(name))))

    def stats(self, queue):
        stats = QueueStats()
        if lib.zc_queue_stats(self._alive(), text(queue), ctypes.byref(stats)):
            raise self._failure()
        return struct_dict(stats)

    def failed(self, queue, limit=100):
        """The jobs on queue's failed list, newest first, as dicts."""
        out = (QueueFailure * limit)()
        count = self._count(lib.zc_queue_failed(self._alive(), text(queue), out, limit))
        return [{"id": string(f.id), "task": string(f.task), "error": string(f.error),
                 "attempts": f.attempts, "failed_at": f.failed_ms / 1000} for f in out[:count]]

    def retry(self, queue, id):
        """Puts a failed job back on its queue; MissingError if it is not on the failed list."""
        if lib.zc_queue_retry(self._alive(), text(queue), text(id)):
            raise self._failure()

    def delete(self, queue):
        """Deletes a queue and all its jobs; returns how many jobs went."""
        return self._count(lib.zc_queue_delete(self._alive(), text(queue)))

    def requeue_node(self, node_id):
        """Returns a gone node's claimed jobs to their queues; returns how many."""
        return self._count(lib.zc_queue_requeue_node(self._alive(), text(node_id)))

    def _alive(self):
        if not self._queue:
            raise errors.StateError("the queue is closed")
        return self._queue

    def _failure(self):
        return errors.error(lib.zc_queue_error(self._queue),
                            string(lib.zc_queue_errstr(self._queue)))

    def _count(self, count):
        if count < 0:
            raise self._failure()
        return count


class Job:
    """A job as its task function sees it; valid during the call only."""

    def __init__(self, job):
        self._job = job
        size = ctypes.c_size_t()
        data = lib.zc_job_args(job, ctypes.byref(size))
        self.id = string(lib.zc_job_id(job))
        self.queue = string(lib.zc_job_queue(job))
        self.task = string(lib.zc_job_task(job))
        self.attempt = lib.zc_job_attempt(job)
        self.data = _codec.copy(data, size.value)

    @property
    def args(self):
        return _codec.unpack(self.data)

    @property
    def cancelled(self):
        """True once the run should stop early (timed out, or the claim may be lost)."""
        return bool(self._job and lib.zc_job_cancelled(self._job))

    @property
    def lost(self):
        return bool(self._job and lib.zc_job_lost(self._job))


@TASK_FN
def _run_task(job, key):
    fn = _callbacks.get(key)
    if fn is None:
        lib.zc_job_set_error(job, b"%s", b"task removed")
        return -1
    view = Job(job)
    try:
        fn(view)
        return 0
    except BaseException as exc:  # a task must never take the worker down
        _callbacks.log.debug("task %s of job %s raised", view.task, view.id, exc_info=True)
        message = f"{type(exc).__name__}: {exc}".encode(errors="replace")
        lib.zc_job_set_error(job, b"%s", message)
        return -1
    finally:
        view._job = None


@FINISHED_FN
def _on_finish(job, rc, key):
    fn = _callbacks.get(key)
    if fn is None:
        return
    view = Job(job)
    error = None if rc == 0 else errors.error(lib.zc_job_error(job),
                                               string(lib.zc_job_errstr(job)))
    try:
        fn(view, error)
    except BaseException:
        _callbacks.log.exception("job finish callback raised")
    finally:
        view._job = None


class Worker:
    """Drains queues with Python task functions on C threads.

    Worker(queue, id=None, queues=(...), concurrency=1, threads=None, lease=None)
    then register tasks, then start() (or use it as a context manager);
    stop() finishes running tasks and gives unstarted jobs back."""

    def __init__(self, queue, id=None, queues=(), concurrency=1, threads=None, lease=None,
                 on_finish=None):
        self._worker = ctypes.c_void_p(lib.zc_queue_worker_new(queue._alive(), text(id)))
        if not self._worker:
            raise errors.InvalidError(f"invalid worker id {id!r}")
        self._keys = []
        lib.zc_queue_worker_set_concurrency(self._worker, concurrency)
        if threads is not None:
            lib.zc_queue_worker_set_threads(self._worker, threads)
        if lease is not None:
            lib.zc_queue_worker_set_lease(self._worker, _ms(lease))
        if on_finish:
            key = _callbacks.add(on_finish)
            self._keys.append(key)
            lib.zc_queue_worker_on_finish(self._worker, _on_finish, key)
        for name in queues:
            self.add_queue(name)

    @property
    def id(self):
        return string(lib.zc_queue_worker_id(self._alive()))

    def register(self, task, fn):
        """Runs fn(job) for jobs of task (before start)."""
        key = _callbacks.add(fn)
        if lib.zc_queue_worker_register(self._alive(), text(task), _run_task, key):
            _callbacks.drop(key)
            raise self._failure()
        self._keys.append(key)
        return fn

    def task(self, name=None):
        """Decorator form of register; the name defaults to the function's."""
        return lambda fn: self.register(name or fn.__name__, fn)

    def add_queue(self, name):
        """Drains queue name too (before start); earlier queues first."""
        if lib.zc_queue_worker_add_queue(self._alive(), text(name)):
            raise self._failure()

    def start(self):
        if lib.zc_queue_worker_start(self._alive()):
            raise self._failure()
        _open_workers.add(self)
        return self

    def stop(self):
        """Stops claiming, finishes running tasks, gives the rest back; idempotent."""
        if self._worker:
            lib.zc_queue_worker_stop(self._worker)

    def close(self):
        _open_workers.discard(self)
        if self._worker:
            lib.zc_queue_worker_destroy(ctypes.byref(self._worker))
        for key in self._keys:
            _callbacks.drop(key)
        self._keys.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def stats(self):
        stats = WorkerStats()
        lib.zc_queue_worker_stats(self._alive(), ctypes.byref(stats))
        return struct_dict(stats)

    def _alive(self):
        if not self._worker:
            raise errors.StateError("the worker is closed")
        return self._worker

    def _failure(self):
        return errors.error(lib.zc_queue_worker_error(self._worker),
                            string(lib.zc_queue_worker_errstr(self._worker)))


_open_workers = set()


@atexit.register
def _close_workers():
    """Workers still running at exit stop before Python tears down."""
    for worker in list(_open_workers):
        worker.close()
