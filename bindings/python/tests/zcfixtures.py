"""Fixtures: a redis-server of the test session's own, a fresh cluster name
per test, consoles of other processes (C nodes, Python peers, Node.js
peers), and a started Python node."""
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

import procs
import zcluster


@pytest.fixture(scope="session")
def redis_url():
    directory = tempfile.mkdtemp(prefix="zc-py-redis-")
    socket = os.path.join(directory, "redis.sock")
    server = procs.spawn(["redis-server", "--port", "0", "--unixsocket", socket,
                          "--unixsocketperm", "700", "--dir", directory, "--save", "",
                          "--appendonly", "no", "--loglevel", "warning"],
                         stdout=subprocess.DEVNULL)
    try:
        procs.wait_for(lambda: procs.redis_ping(socket), 5, "redis-server to answer")
        yield "unix://" + socket
    finally:
        procs.stop(server)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def cluster():
    return "py" + uuid.uuid4().hex[:10]


@pytest.fixture
def env(redis_url, cluster):
    """Environment for child processes: the test's Redis and cluster."""
    return dict(os.environ, ZC_REDIS_URL=redis_url, ZC_CLUSTER=cluster)


@pytest.fixture
def spawned():
    """spawned(kind, *args, env=...) starts a console: "c" (zcluster node),
    "py" (peer.py), "js" (the Node.js peer) or "worker" (zcluster worker); all
    are killed after the test."""
    started = []

    def start(kind, *args, env=None):
        console = {"c": procs.CNode, "py": procs.PyPeer, "js": procs.NodePeer,
                   "worker": procs.CWorker}[kind](
            *args, env=env)
        started.append(console)
        return console
    yield start
    for console in started:
        console.close()


@pytest.fixture
def node(redis_url, cluster):
    """A started Python node in the test's cluster, closed after the test."""
    with zcluster.Node(redis=redis_url, cluster=cluster, lease_ttl=1.5) as n:
        yield n
