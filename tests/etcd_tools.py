"""The real etcd, etcdctl and etcdutl at the version kubeadm 1.36 runs, built through upstream_tools.go_tool.

kubeadm v1.36.4 `cmd/kubeadm/app/constants/constants.go`: DefaultEtcdVersion = "3.6.8-0", and
SupportedEtcdVersion maps 34, 35 and 36 to "3.6.8-0". Each binary is the main package of its own module
at that tag (etcd-io/etcd@v3.6.8: `server/main.go`, `etcdctl/main.go`, `etcdutl/main.go`). The version
itself is a variable of api/version (`Version = "3.6.8"`); the build stamps GitSHA. kubeadm v1.37.2 pins
"3.7.0-0" (its DefaultEtcdVersion): the lab's one-minor upgrade ends there, so etcd_tool takes a version.
"""

from __future__ import annotations

from pathlib import Path

from tests.upstream_tools import go_tool

ETCD_VERSION = "v3.6.8"
MODULES = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "etcdctl": "go.etcd.io/etcd/etcdctl/v3",
    "etcdutl": "go.etcd.io/etcd/etcdutl/v3",
}


def etcd_tool(name: str, version: str = ETCD_VERSION) -> Path:
    """`etcd`, `etcdctl` or `etcdutl` at VERSION (vX.Y.Z; built once, then cached)."""
    module = MODULES[name]
    return go_tool(name, module, version, module, "go.etcd.io/etcd/api/v3/version.GitSHA")
