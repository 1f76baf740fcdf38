"""Queue and Worker with Python task functions against a real Redis."""
import os
import sys
import threading
import time

import pytest

import procs
import zcluster


def wait_until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def queue(redis_url, cluster):
    with zcluster.Queue(redis_url, cluster) as q:
        yield q


def test_worker_runs_python_tasks(queue):
    done, lock = [], threading.Lock()
    worker = zcluster.Worker(queue, "py-w1", queues=["high", "low"], concurrency=4, threads=2)

    @worker.task()
    def add(job):
        with lock:
            done.append((job.queue, job.args["a"] + job.args["b"], job.attempt))
    for i in range(20):
        queue.enqueue("low" if i % 2 else "high", "add", {"a": i, "b": 1})
    with worker:
        wait_until(lambda: len(done) == 20)
        wait_until(lambda: worker.stats()["succeeded"] == 20)
    assert sorted(v for _, v, _ in done) == list(range(1, 21))
    assert all(attempt == 1 for _, _, attempt in done)
    assert queue.stats("high")["processed"] == 10


def test_failing_task_retries_then_fails_with_its_error(queue):
    finished = []
    worker = zcluster.Worker(queue, "py-w2", queues=["q"],
                             on_finish=lambda job, error: finished.append((job.id, error)))

    @worker.task("explode")
    def explode(job):
        raise KeyError("no such thing")
    job_id = queue.enqueue("q", "explode", [1], max_attempts=2, backoff=0.05)
    with worker:
        wait_until(lambda: queue.stats("q")["failed_list"] == 1)
        stats = worker.stats()
    assert stats["failed"] == 2
    [failure] = queue.failed("q")
    assert failure["id"] == job_id and failure["attempts"] == 2
    assert failure["error"] == "KeyError: 'no such thing'"
    assert [(i, type(e), e.message) for i, e in finished] == [
        (job_id, zcluster.HandlerError, "KeyError: 'no such thing'")] * 2
    queue.retry("q", job_id)
    with pytest.raises(zcluster.MissingError):
        queue.retry("q", job_id)


def test_enqueue_options_and_admin(queue):
    assert queue.enqueue("q", "t", id="job-1") == "job-1"
    with pytest.raises(zcluster.DuplicateError):
        queue.enqueue("q", "t", id="job-1")
    queue.enqueue("q", "t", delay=60)
    queue.enqueue("q", "t", at=queue.now() + 60)
    assert queue.enqueue_many("q", "t", [1, 2, 3]) == 3
    stats = queue.stats("q")
    assert (stats["queued"], stats["delayed"]) == (4, 2)
    queue.every("tick", "q", "t", 60)
    assert queue.every_remove("tick") and not queue.every_remove("tick")
    assert queue.delete("q") == 6
    assert queue.requeue_node("gone-node") == 0
    with pytest.raises(zcluster.InvalidError):
        queue.enqueue("bad queue", "t")


def test_cancelled_job_sees_its_timeout(queue):
    seen = []
    worker = zcluster.Worker(queue, "py-w3", queues=["slow"])

    @worker.task()
    def slow(job):
        while not job.cancelled:
            time.sleep(0.01)
        seen.append(job.cancelled)
    queue.enqueue("slow", "slow", timeout=0.2, max_attempts=1)
    with worker:
        wait_until(lambda: queue.stats("slow")["failed_list"] == 1)
    assert seen == [True]
    assert "timed out" in queue.failed("slow")[0]["error"]


def test_jobs_between_python_and_c_workers(queue, env, spawned):
    """Python enqueues for a C worker, a C console enqueues for Python tasks."""
    c = spawned("worker", "--id", "c-worker", "--queue", "to-c", env=env)
    job_id = queue.enqueue("to-c", "echo", {"n": 1})
    c.expect(rf"^done {job_id} echo 1$")
    ran = []
    worker = zcluster.Worker(queue, "py-w4", queues=["to-py"])

    @worker.task("double")
    def double(job):
        if job.args == "bad":
            raise ValueError("cannot double that")
        ran.append(job.args[0] * 2)
    with worker:
        c.command('enqueue to-py double [21]')
        failing = c.command('enqueue to-py double "bad" --attempts 1')
        wait_until(lambda: ran == [42] and queue.stats("to-py")["failed_list"] == 1)
    assert c.command("failed to-py") == f"count=1 {failing}(1: ValueError: cannot double that)"


def test_a_python_worker_killed_mid_job_loses_nothing(queue, env, spawned):
    """Its claim lapses and a C worker runs the job (attempt 2)."""
    script = ("import sys, time; sys.path.insert(0, %r); import zcluster\n"
              "q = zcluster.Queue()\n"
              "w = zcluster.Worker(q, 'py-doomed', queues=['shared'], lease=0.5)\n"
              "def sleep(job):\n    print('started', job.id, flush=True); time.sleep(60)\n"
              "w.register('sleep', sleep)\n"
              "with w:\n    print('ready py-doomed', flush=True); time.sleep(120)\n"
              ) % os.path.join(os.path.dirname(__file__), "..")
    doomed = procs.Console([sys.executable, "-c", script], env=env)
    try:
        job_id = queue.enqueue("shared", "sleep", 10)
        doomed.expect(rf"^started {job_id}$")
        doomed.kill()
    finally:
        doomed.close()
    c = spawned("worker", "--id", "c-rescuer", "--queue", "shared", env=env)
    c.expect(rf"^done {job_id} sleep 2$")
    # The worker prints "done" before it sends the result to Redis.
    wait_until(lambda: queue.stats("shared")["processed"] == 1)
