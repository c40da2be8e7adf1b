"""kube-bench (github.com/aquasecurity/kube-bench) v0.14.1: the build, the run on a host, and its counts.

The version: v0.14.1 is what the Go module proxy serves of the 0.1x line (v0.12.1 and v0.15.0 are not);
its version is the variable cmd.KubeBenchVersion (cmd/version.go@v0.14.1). The checksum database does not
list v0.14.1 (sum.golang.org answers 404 through the proxy), so the build skips it for this module only
(GONOSUMDB); the proxy's .info names the tag's commit 8afa78abaf8b32a24a280813b7d0e3f07aa10c95, which is
what the tag v0.14.1 of github.com/aquasecurity/kube-bench points at (checked, with cfg/ the same).

The benchmarks are YAML under cfg/ of the module zip, passed with --config-dir. Kubernetes 1.36 is not in
cfg/config.yaml's version_mapping@v0.14.1 (it ends at "1.32": "cis-1.11"); kube-bench then lowers the
minor until one is (cmd/common.go mapToBenchmarkVersion, decrementVersion@v0.14.1), so `--version 1.36`
runs **cis-1.11** (CIS Kubernetes Benchmark v1.11, written for 1.29-1.32): `benchmark_of` reads it back.

Automated checks: the CIS marks each recommendation "(Automated)" or "(Manual)"; kube-bench's cis-1.11
YAML writes the manual ones as `scored: false` or `type: manual` (a manual check is reported WARN
whatever it finds: check/check.go Check.run@v0.14.1), the automated ones as `scored: true` without a
type. `automated(results)` keeps those.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

from tests.upstream_tools import go_tool

MODULE = "github.com/aquasecurity/kube-bench"
VERSION = "v0.14.1"
BENCHMARK = "cis-1.11"  # what --version 1.36 maps to (module docstring)
TARGETS = ("master", "etcd", "controlplane", "policies")  # "node" checks the kubelet


def kube_bench() -> Path:
    """The kube-bench binary (built once, then cached)."""
    return go_tool("kube-bench", MODULE, VERSION, MODULE, f"{MODULE}/cmd.KubeBenchVersion",
                   env={"GONOSUMDB": MODULE})


def config_dir() -> Path:
    """cfg/ of the module at VERSION (`go mod download -json` → Dir)."""
    result = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"], capture_output=True, text=True,
                            env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod", "GONOSUMDB": MODULE})
    assert result.returncode == 0, f"go mod download {MODULE}@{VERSION} failed:\n{result.stdout}{result.stderr}"
    return Path(json.loads(result.stdout)["Dir"]) / "cfg"


def command(kubernetes_minor: str, targets: tuple[str, ...] = TARGETS) -> list[str]:
    """The kube-bench command line, for a host that has `kube-bench` on PATH and sees config_dir()."""
    return ["kube-bench", "--config-dir", str(config_dir()), "--version", kubernetes_minor,
            "run", "--targets", ",".join(targets), "--json"]


def benchmark_of(report: dict) -> set[str]:
    """The benchmark versions a report's sections ran."""
    return {control["version"] for control in report["Controls"]}


def results(report: dict) -> dict[str, dict]:
    """Every check of a `--json` report by id (e.g. "1.2.16")."""
    return {result["test_number"]: result for control in report["Controls"] for group in control["tests"]
            for result in group["results"]}


def automated(checks: dict[str, dict]) -> dict[str, dict]:
    """The automated checks (module docstring)."""
    return {id_: r for id_, r in checks.items() if r["scored"] and r["type"] not in ("manual", "skip")}


def counts(checks: dict[str, dict]) -> Counter:
    """{"PASS": n, "FAIL": n, "WARN": n, ...}."""
    return Counter(r["status"] for r in checks.values())
