"""Cache against a real Redis, and shared with the C command (`zcluster cache`)."""
import subprocess

import pytest

import procs
import zcluster


@pytest.fixture
def cache(redis_url, cluster):
    with zcluster.Cache(redis_url, cluster, "py-owner") as c:
        yield c


def test_values_ttl_and_errors(cache):
    assert cache.owner == "py-owner"
    cache.save("k", {"a": [1, "two", b"\x03"], "n": None})
    assert cache.load("k") == {"a": [1, "two", b"\x03"], "n": None}
    assert cache.ttl("k") is None
    cache.save("t", 5, ttl=60)
    assert 0 < cache.ttl("t") <= 60
    assert cache.load("t", slide=120) == 5 and cache.ttl("t") > 60
    with pytest.raises(zcluster.MissingError):
        cache.load("absent")
    assert cache.get("absent", "dflt") == "dflt"
    cache.delete("k")
    with pytest.raises(zcluster.MissingError):
        cache.delete("k")
    with pytest.raises(zcluster.InvalidError):
        cache.save("", 1)


def test_lists(cache):
    for item in ("a", 2, [3]):
        cache.push("l", item)
    assert cache.length("l") == 3
    assert [cache.pop("l") for _ in range(3)] == ["a", 2, [3]]
    with pytest.raises(zcluster.MissingError):
        cache.pop("l")
    with pytest.raises(zcluster.TimedOut):
        cache.pop("l", timeout=0.1)
    cache.save("v", 1)
    with pytest.raises(zcluster.WrongTypeError):
        cache.push("v", 2)


def test_locks_between_owners(cache, redis_url, cluster):
    with zcluster.Cache(redis_url, cluster, "other") as other:
        cache.save("x", 1)
        other.lock("x", 10)
        assert cache.locked("x") == "other"
        with pytest.raises(zcluster.LockedError) as locked:
            cache.save("x", 2)
        assert locked.value.kind_name == "locked"
        with pytest.raises(zcluster.LockedError):
            cache.unlock("x")
        other.unlock("x")
        assert cache.locked("x") is None
        cache.save("x", 3)
        assert other.load("x") == 3


def test_keys_size_clear_many_dump_restore(cache, tmp_path):
    cache.save_many({"m1": 1, "m2": "two", "m3": [3]}, ttl=100)
    assert cache.load_many(["m1", "m3", "none"]) == {"m1": 1, "m3": [3]}
    assert sorted(cache.keys("m*")) == ["m1", "m2", "m3"]
    assert len(cache) == 3
    path = tmp_path / "cache.dump"
    assert cache.dump(path) == 3
    assert cache.clear() == 3 and len(cache) == 0
    assert cache.restore(path) == 3
    assert cache.load("m2") == "two" and 0 < cache.ttl("m2") <= 100
    (tmp_path / "bad.dump").write_bytes(b"not a dump")
    with pytest.raises(zcluster.CorruptError):
        cache.restore(tmp_path / "bad.dump")
    with pytest.raises(zcluster.FileError):
        cache.restore(tmp_path / "none.dump")


def test_redis_down_is_a_redis_error():
    with zcluster.Cache("unix:///nonexistent/redis.sock", "c", "o") as cache:
        with pytest.raises(zcluster.RedisError):
            cache.save("k", 1)
    with pytest.raises(zcluster.InvalidError):
        zcluster.Cache("bogus://x", "c", "o")


def test_shared_with_the_c_cache_command(cache, redis_url, cluster):
    def c_cache(*args):
        return subprocess.run([procs.zcluster_binary(), "cache", "--redis", redis_url,
                               "--cluster", cluster, "--id", "c-owner", *args],
                              capture_output=True, text=True, timeout=30)
    cache.save("from-py", "hello from python")
    assert c_cache("load", "from-py").stdout == "hello from python\n"
    assert c_cache("save", "from-c", "hello from c").returncode == 0
    assert cache.load("from-c") == "hello from c"
    cache.lock("from-c", 10)
    refused = c_cache("save", "from-c", "overwrite")
    assert refused.returncode == 1 and "locked" in refused.stderr
    assert cache.load("from-c") == "hello from c"
