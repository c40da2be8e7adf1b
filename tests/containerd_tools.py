"""The real container runtime tools, built through upstream_tools.go_tool: containerd, ctr and crictl.

containerd is a Go module without replace directives; its go.mod has exclude directives, so
`go install …@v` refuses it and the binaries are built from a throwaway module that requires it (about
4 minutes cold on 2 cores, module download included). Docker's containerd.io shipped 2.1.5; 2.2.9 is the
newest 2.2 the Go module proxy serves. containerd and ctr stamp `version.Version` as containerd's Makefile
does (`-X $(PKG)/version.Version=$(VERSION)`, Makefile@v2.1.5).

crictl is `cmd/crictl` of sigs.k8s.io/cri-tools. The proxy serves v1.36.0 as the newest v1.36.x (v1.36.1 and
later: "not available", 2026-11-26), the release pkgs.k8s.io ships as cri-tools 1.36.0 beside Kubernetes
1.36. Its Makefile@v1.36.0 stamps `-X sigs.k8s.io/cri-tools/pkg/version.Version=$(VERSION)` with the tag
without its `v` (`git describe --tags | sed 's/^v//'`), so `crictl --version` says `crictl version 1.36.0`.
"""

from __future__ import annotations

from pathlib import Path

from tests.upstream_tools import go_tool

CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
CONTAINERD_VERSIONS = ("v2.1.5", "v2.2.9")
CRI_TOOLS_MODULE = "sigs.k8s.io/cri-tools"
CRI_TOOLS_VERSION = "v1.36.0"


def build_containerd(version: str, name: str = "containerd") -> Path:
    """`cmd/NAME` (containerd or ctr) of containerd `version`, built once (CGO off, tag no_btrfs) and cached."""
    return go_tool(name, CONTAINERD_MODULE, version, f"{CONTAINERD_MODULE}/cmd/{name}",
                   f"{CONTAINERD_MODULE}/version.Version", tags="no_btrfs")


def build_crictl(version: str = CRI_TOOLS_VERSION) -> Path:
    """crictl VERSION (vX.Y.Z), built once and cached."""
    stamp = f"{CRI_TOOLS_MODULE}/pkg/version.Version"
    return go_tool("crictl", CRI_TOOLS_MODULE, version, f"{CRI_TOOLS_MODULE}/cmd/crictl", stamp,
                   stamps={stamp: version.removeprefix("v")})
