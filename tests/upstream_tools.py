"""Upstream programs that tests check our output against, built from the Go module proxy.

`go_tool(...)` builds one main package of MODULE@VERSION once, version-stamped, into
`${KUBEADM_CLUSTER_CACHE:-~/.cache/kubeadm-cluster}/tools/NAME-VERSION/NAME` and returns its path.
The build runs in a wrapper module that requires MODULE@VERSION (`go install module@version` also asks
the proxy for the module's version list, which it refuses for some modules, e.g. kube-vip; and it
refuses modules whose go.mod has replace or exclude directives, e.g. containerd). The binary is moved
into place in one rename, so a cached binary is always complete; a build holds a lock beside it, so a process
asking for a tool another is building (.ci/run's lab prebuild beside tier 1: tests/lab/prebuild.py) waits for
that build instead of repeating it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def tools_dir() -> Path:
    return Path(os.environ.get("KUBEADM_CLUSTER_CACHE") or Path.home() / ".cache" / "kubeadm-cluster") / "tools"


# What this session built (tests/conftest.py prints it at the end: CI shows each build's time).
BUILDS: list[str] = []


def go_tool(name: str, module: str, version: str, package: str, stamp: str, tags: str = "",
            replace: dict[str, str] | None = None, stamps: dict[str, str] | None = None,
            env: dict[str, str] | None = None) -> Path:
    """NAME built from PACKAGE of MODULE@VERSION; STAMP is the -X variable that takes the version.

    REPLACE adds `replace PATH => TARGET` lines to the wrapper module (for modules whose own go.mod
    replaces paths with directories, e.g. k8s.io/kubernetes and its staging repos); STAMPS are further
    -X variables and their values; ENV more environment for go (e.g. GONOSUMDB for a module the
    checksum database does not list)."""
    binary = tools_dir() / f"{name}-{version}" / name
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        pytest.fail(f"no 'go' on PATH: the reference {name} is built from the Go module proxy")
    binary.parent.mkdir(parents=True, exist_ok=True)
    with open(binary.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not binary.exists():
            _build(binary, module, version, package, stamp, tags, replace, stamps, env)
    return binary


def _build(binary: Path, module: str, version: str, package: str, stamp: str, tags: str,
           replace: dict[str, str] | None, stamps: dict[str, str] | None, env: dict[str, str] | None) -> None:
    name = binary.name
    with tempfile.TemporaryDirectory(dir=binary.parent) as work:
        (Path(work) / "go.mod").write_text(f"module kubeadm-cluster.invalid/{name}-build\n\ngo 1.26\n\n"
                                           f"require {module} {version}\n"
                                           + "".join(f"replace {path} => {target}\n"
                                                     for path, target in (replace or {}).items()))
        ldflags = " ".join(f"-X {variable}={value}" for variable, value in {stamp: version, **(stamps or {})}.items())
        # The compiler collects garbage less often at GOGC=400 (as toolchain/build; why there); a caller's own wins.
        env = {"GOGC": "400", **os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0",
               "GOFLAGS": "-mod=mod -buildvcs=false", **(env or {})}
        started = time.monotonic()
        result = subprocess.run(
            ["go", "build", "-trimpath", *(["-tags", tags] if tags else []),
             "-ldflags", f"-s -w {ldflags}", "-o", str(Path(work) / name), package],
            cwd=work, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"building {name} {version} failed:\n{result.stderr[-3000:]}")
        BUILDS.append(f"{name} {version} in {time.monotonic() - started:.0f} s")
        os.replace(Path(work) / name, binary)
