"""The ctypes mirrors of the C structs match the C headers, field by field.

ctypes cannot read a header: each struct the binding hands to the library is
written out again in _lib.py, and a field added in C but not here makes the
library write past the Python object. This test compiles a C program against
the checkout's headers that prints every mirrored struct's size and its
fields' offsets, and compares them with ctypes."""
import ctypes
import os
import shutil
import subprocess

import pytest

from zcluster import _lib

INCLUDE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "include")

#  ctypes class -> C type, in the order the C program prints them.
MIRRORS = [
    (_lib.RpcReply, "zc_rpc_reply_t"),
    (_lib.Histogram, "zc_histogram_t"),
    (_lib.RpcStats, "zc_rpc_stats_t"),
    (_lib.MeshStats, "zc_mesh_stats_t"),
    (_lib.LoadOpts, "zc_cache_load_opts_t"),
    (_lib.CacheEntry, "zc_cache_entry_t"),
    (_lib.JobOpts, "zc_job_opts_t"),
    (_lib.QueueItem, "zc_queue_item_t"),
    (_lib.QueueStats, "zc_queue_stats_t"),
    (_lib.QueueFailure, "zc_queue_failure_t"),
    (_lib.WorkerStats, "zc_queue_worker_stats_t"),
    (_lib.NodeEvents, "zc_node_events_t"),
]


def _c_layouts(tmp_path):
    lines = ['#include <zcluster.h>', '#include <stddef.h>', '#include <stdio.h>',
             'int main(void) {']
    for cls, ctype in MIRRORS:
        lines.append(f'    printf("{ctype} %zu\\n", sizeof({ctype}));')
        for name, _ in cls._fields_:
            lines.append(f'    printf("{ctype}.{name} %zu\\n", offsetof({ctype}, {name}));')
    lines += ['    return 0;', '}']
    source = tmp_path / "layout.c"
    source.write_text("\n".join(lines) + "\n")
    flags = subprocess.run(["pkg-config", "--cflags", "libczmq", "libzmq"], check=True,
                           capture_output=True, text=True).stdout.split()
    program = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-I", INCLUDE, *flags, str(source), "-o", str(program)],
                   check=True)
    out = subprocess.run([str(program)], check=True, capture_output=True, text=True).stdout
    return dict(line.rsplit(" ", 1) for line in out.splitlines())


@pytest.mark.skipif(not shutil.which("cc") or not shutil.which("pkg-config"),
                    reason="needs a C compiler and pkg-config")
def test_ctypes_structs_match_the_headers(tmp_path):
    c = _c_layouts(tmp_path)
    for cls, ctype in MIRRORS:
        for name, _ in cls._fields_:
            assert int(c[f"{ctype}.{name}"]) == getattr(cls, name).offset, f"{ctype}.{name}"
        assert int(c[ctype]) == ctypes.sizeof(cls), f"sizeof({ctype}): a field is missing"
