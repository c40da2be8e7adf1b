"""Real Kubernetes binaries (kubeadm, kubectl, kube-apiserver, …) of a release, built through upstream_tools.go_tool.

k8s.io/kubernetes@v1.36.4 go.mod (as every release's) replaces every staging repo with `./staging/src/k8s.io/<repo>`, a
directory a wrapper module cannot see; each is published as `k8s.io/<repo> v0.36.4`, so the wrapper
replaces them with those. The version lives in k8s.io/component-base/version (base.go@v1.36.4:
gitVersion defaults to "v0.0.0-master", which kubeadm's version checks reject) and in
k8s.io/client-go/pkg/version: the build stamps both as hack/lib/version.sh@v1.36.4 kube::version::ldflags
does, with the tag's time as buildDate.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from components.config import DEFAULT_KUBERNETES_VERSION
from tests.upstream_tools import go_tool

MODULE = "k8s.io/kubernetes"
VERSION = f"v{DEFAULT_KUBERNETES_VERSION}"


def _module_info(version: str) -> dict:
    """`go mod download -json` of MODULE@version: its go.mod and .info (tag time; commit when the proxy says) paths."""
    result = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{version}"], capture_output=True,
                            text=True, env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"})
    assert result.returncode == 0, f"go mod download {MODULE}@{version} failed:\n{result.stdout}{result.stderr}"
    return json.loads(result.stdout)


def kubernetes_tool(name: str, version: str = VERSION) -> Path:
    """`cmd/NAME` of k8s.io/kubernetes at `version` (vX.Y.Z; built once, then cached)."""
    info = _module_info(version)
    staging = re.findall(r"^\s*(?:replace\s+)?(k8s\.io/[\w.-]+) => \./staging/src/",
                         Path(info["GoMod"]).read_text(), re.MULTILINE)
    assert staging, f"no staging replaces in {info['GoMod']}"
    major, minor, patch = version.removeprefix("v").split(".")
    tag = json.loads(Path(info["Info"]).read_text())
    # The tree is the tag's, "clean" as release binaries report; the commit only if the proxy's .info names it
    # (proxy.golang.org's does not for k8s.io/kubernetes v1.36.4), else gitCommit stays empty.
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "buildDate": tag["Time"],
              "gitCommit": tag.get("Origin", {}).get("Hash", ""), "gitTreeState": "clean"}
    stamps = {f"{package}.{variable}": value
              for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
              for variable, value in values.items() if value}
    return go_tool(name, MODULE, version, f"{MODULE}/cmd/{name}", "k8s.io/component-base/version.gitVersion",
                   replace={path: f"{path} v0.{minor}.{patch}" for path in staging}, stamps=stamps)
