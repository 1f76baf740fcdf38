"""Processes the tests start: every one dies with the test process
(PR_SET_PDEATHSIG) and is killed by its fixture at the end.

CNode drives `zcluster node` (the C library's console: one line per
command, events printed as lines); PyPeer drives peer.py, a Python-binding
node in another interpreter with the same kind of console.
"""
import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(argv, **kwargs):
    return subprocess.Popen(argv, preexec_fn=_die_with_parent, **kwargs)


def stop(proc, grace=5):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def redis_ping(path):
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def zcluster_binary():
    """The zcluster command next to the library the binding loaded."""
    explicit = os.environ.get("ZCLUSTER_BIN")
    if explicit:
        return explicit
    import zcluster
    candidate = os.path.join(os.path.dirname(zcluster.library_path), "zcluster")
    return candidate if os.path.exists(candidate) else "zcluster"


class Console:
    """A child process answering line commands; its output lines are kept."""

    def __init__(self, argv, env=None):
        self.proc = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                          text=True, bufsize=1)
        self.lines = queue.Queue()
        self.seen, self.pending = [], []
        self.id = argv[-1]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self.expect(r"^ready (\S+)")
        self.id = ready.group(1)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=10, node=None):
        """Waits for the first line not yet taken that matches pattern
        (re.search), takes it and returns the match. Lines that do not match
        stay for later expects, so the order of two expects only matters for
        lines that both could match. With a node, runs it meanwhile (a node
        only serves while its thread is inside it)."""
        regex = re.compile(pattern)
        for i, line in enumerate(self.pending):
            match = regex.search(line)
            if match:
                del self.pending[i]
                return match
        deadline = time.monotonic() + timeout
        while True:
            try:
                if node is None:
                    line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
                else:
                    line = self.lines.get_nowait()
            except queue.Empty:
                if node is not None and time.monotonic() < deadline:
                    node.run(timeout=0.01)
                    continue
                raise AssertionError(f"{self.id}: no line matching {pattern!r}; "
                                     f"saw {self.seen[-20:]}") from None
            if line is None:
                self.lines.put(None)  # and for the next expect
                raise AssertionError(f"{self.id}: ended before a line matching {pattern!r}; "
                                     f"saw {self.seen[-20:]}")
            self.seen.append(line)
            match = regex.search(line)
            if match:
                return match
            self.pending.append(line)

    def expect_all(self, patterns, timeout=10, node=None):
        """Waits until every pattern has matched a line, in any order."""
        deadline = time.monotonic() + timeout
        for pattern in patterns:
            self.expect(pattern, max(0.0, deadline - time.monotonic()), node)

    def command(self, line, timeout=10, node=None):
        """Sends a command and returns its answer's text after "ok NAME"; fails on "error"."""
        self.send(line)
        match = self.expect(r"^(ok|error) ([^\s:]+):? ?(.*)$", timeout, node)
        assert match.group(1) == "ok", f"{line!r} answered {match.group(0)!r}"
        return match.group(3)

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(10)

    def close(self):
        """Ends the process (end of input, then SIGTERM, then SIGKILL) and its pipes."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        stop(self.proc)
        self._reader.join(5)  # the pipe's end: the reader is done with stdout
        self.proc.stdout.close()


class CNode(Console):
    """`zcluster node` in the test's cluster (ZC_REDIS_URL, ZC_CLUSTER in env)."""

    def __init__(self, *args, env=None):
        super().__init__([zcluster_binary(), "node", "--lease-ttl", "1500", *args], env=env)


class PyPeer(Console):
    """peer.py: a Python-binding node in its own interpreter."""

    def __init__(self, *args, env=None):
        super().__init__([sys.executable, os.path.join(HERE, "peer.py"), *args], env=env)


def node_peer_cli():
    """The Node.js peer's console: $ZC_NODE_PEER, else bindings/node/peer-cli.js."""
    return os.environ.get("ZC_NODE_PEER") or os.path.normpath(
        os.path.join(HERE, "..", "..", "node", "peer-cli.js"))


class NodePeer(Console):
    """The Node.js peer (bindings/node), which speaks the wire protocol itself."""

    def __init__(self, *args, env=None):
        super().__init__(["node", node_peer_cli(), "--lease-ttl", "1500", *args], env=env)


class CWorker(Console):
    """`zcluster worker`: C task handlers (noop, sleep, fail, echo) and a
    console to enqueue and administer."""

    def __init__(self, *args, env=None):
        super().__init__([zcluster_binary(), "worker", *args], env=env)
