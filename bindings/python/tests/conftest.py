"""Fixtures of the binding's tests (zcfixtures.py, shared with the
cross-language test in the top-level tests/) and the path to the package."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from zcfixtures import cluster, env, node, redis_url, spawned  # noqa: E402,F401 (fixtures)
