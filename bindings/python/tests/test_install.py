"""`pip install` of the package from a checkout, then import outside it."""
import os
import shutil
import subprocess
import sys

import zcluster

PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def test_pip_install_into_a_venv(tmp_path):
    source = tmp_path / "src"  # a copy: pip builds in the tree it is given
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns(
        "tests", "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    # offline (no PyPI): Debian's setuptools builds it, not an isolated download
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-index",
                    "--no-build-isolation", str(source)], check=True)
    env = dict(os.environ, ZCLUSTER_LIB=zcluster.library_path)
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import zcluster; print(zcluster.__file__); print(zcluster.library_path); "
         "print(zcluster.LockedError().kind_name)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0].startswith(str(venv)) and out[1] == zcluster.library_path
    assert out[2] == "locked"
    env.pop("ZCLUSTER_LIB")
    env["LD_LIBRARY_PATH"] = os.path.dirname(zcluster.library_path)
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import zcluster; print(zcluster.library_path)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "libzcluster.so.0"  # found by the loader's own path
