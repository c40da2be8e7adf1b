"""The real kube-vip, built through upstream_tools.go_tool (a module without replace directives).

The reference build is v1.2.2, not the pinned image's v1.2.3 (components/loadbalancer.py KUBE_VIP_IMAGE):
the proxy answers 403 "not available" for github.com/kube-vip/kube-vip@v1.2.3 (and for its commit 7ce55caf).
v1.2.2..v1.2.3 changes neither the generator (cmd/, pkg/kubevip/config_generator.go) nor the manager's config
parsing and validation (it only adds the optional `vip_skipdad` variable). Its version is `main.Version`.
"""

from __future__ import annotations

from pathlib import Path

from tests.upstream_tools import go_tool

REFERENCE_VERSION = "v1.2.2"
MODULE = "github.com/kube-vip/kube-vip"


def build_kube_vip() -> Path:
    """kube-vip REFERENCE_VERSION, built once (cold about 3 min of CPU), then cached."""
    return go_tool("kube-vip", MODULE, REFERENCE_VERSION, MODULE, "main.Version")
