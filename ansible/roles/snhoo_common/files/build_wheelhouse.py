"""Build, on the controller, one wheelhouse per kind of node in the lab.

    build_wheelhouse.py --wheelhouse DIR [--source DIR] --target NAME:PY:GLIBC:ARCH ... [--pip-arg ARG ...]

snhoo-dask itself is pure Python: its wheel is built once, from the checkout,
with this (the controller's) Python.  Its dependencies are not: numpy and
friends have one binary wheel per Python version and C library, so each
target (a node's Python major.minor, glibc and CPU) gets its own folder of
wheels fetched with `pip download --python-version/--platform`, then packed
into DIR/NAME.tar that the nodes install from with --no-index.

Reruns are cheap and offline: a target's dependencies are fetched again only
when snhoo-dask's requirements (or the pip arguments) change, and the archives
are byte-identical when nothing changed, so copying them to the nodes reports
no change.  Prints one line per archive that changed.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

MARKER = ".snhoo-requires"


def build_snhoo_wheel(source: str, out: str) -> None:
    """Wheel of the checkout, built from a copy so the checkout gets no build/ or egg-info."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        shutil.copytree(
            source,
            src,
            ignore=shutil.ignore_patterns(
                ".git", "*.egg-info", "build", "dist", "ansible", "tests", ".venv", "__pycache__"
            ),
        )
        # pyproject.toml names README.md as the long description.
        readme = os.path.join(src, "README.md")
        if not os.path.exists(readme):
            open(readme, "w").close()
        os.makedirs(out, exist_ok=True)
        for old in glob.glob(os.path.join(out, "snhoo_dask-*.whl")):
            os.remove(old)
        # SOURCE_DATE_EPOCH: the same code gives a byte-identical wheel.
        env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, src],
            check=True,
            env=env,
        )


def requirements(wheel: str) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(meta).decode().splitlines()
    return sorted(ln for ln in lines if ln.startswith(("Requires-Dist:", "Requires-Python:")))


def platforms(glibc: str, arch: str) -> list[str]:
    """Every manylinux tag a node with this glibc can run, oldest first."""
    major, minor = (int(x) for x in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(5, minor + 1)]
    # Older wheels carry only the legacy aliases of 2_5, 2_12 and 2_17.
    legacy = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}
    tags += [f"{name}_{arch}" for m, name in legacy.items() if m <= minor]
    return tags


def fetch_dependencies(wheel: str, tdir: str, py: str, glibc: str, arch: str, pip_args: list[str]) -> None:
    want = "\n".join([*requirements(wheel), f"python={py} glibc={glibc} arch={arch}", *pip_args]) + "\n"
    marker = os.path.join(tdir, MARKER)
    if os.path.exists(marker) and open(marker).read() == want:
        return
    shutil.rmtree(tdir, ignore_errors=True)
    os.makedirs(tdir)
    nodot = py.replace(".", "")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
    cmd += ["--python-version", py, "--implementation", "cp"]
    cmd += ["--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]
    for tag in platforms(glibc, arch):
        cmd += ["--platform", tag]
    cmd += ["--dest", tdir, *pip_args, wheel]
    subprocess.run(cmd, check=True)
    with open(marker, "w") as fh:
        fh.write(want)


def pack(tdir: str, archive: str) -> bool:
    """A reproducible tar of the folder's wheels; True when it changed."""
    tmp = archive + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(os.listdir(tdir)):
            if not name.endswith(".whl"):
                continue
            info = tar.gettarinfo(os.path.join(tdir, name), arcname=name)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with open(os.path.join(tdir, name), "rb") as fh:
                tar.addfile(info, fh)
    if os.path.exists(archive) and open(archive, "rb").read() == open(tmp, "rb").read():
        os.remove(tmp)
        return False
    os.replace(tmp, archive)
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheelhouse", required=True)
    ap.add_argument("--source")
    ap.add_argument("--target", action="append", default=[], help="NAME:PY:GLIBC:ARCH")
    ap.add_argument("--pip-arg", action="append", default=[])
    a = ap.parse_args()
    own = os.path.join(a.wheelhouse, "snhoo")
    if a.source:
        build_snhoo_wheel(a.source, own)
    wheels = glob.glob(os.path.join(own, "snhoo_dask-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one snhoo_dask wheel in {own}, found {len(wheels)}")
    wheel = wheels[0]
    for target in a.target:
        name, py, glibc, arch = target.split(":")
        tdir = os.path.join(a.wheelhouse, name)
        fetch_dependencies(wheel, tdir, py, glibc, arch, a.pip_arg)
        for old in glob.glob(os.path.join(tdir, "snhoo_dask-*.whl")):
            os.remove(old)
        shutil.copy(wheel, tdir)
        if pack(tdir, os.path.join(a.wheelhouse, name + ".tar")):
            print(f"changed {name}.tar")


if __name__ == "__main__":
    main()
