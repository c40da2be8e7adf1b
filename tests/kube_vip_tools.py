"""The real kube-vip, built through upstream_tools.go_tool (a module without replace directives).

The pinned image is v1.2.3 (components/config.py KUBE_VIP_IMAGE), but the proxy answers 403 "not available" for
github.com/kube-vip/kube-vip@v1.2.3 (and for its commit 7ce55caf). So v1.2.3 is built from its source tree when one
is at SOURCE_V1_2_3 (the tag's files, e.g. `git archive v1.2.3 | tar -x -C DIR` of a clone of
github.com/kube-vip/kube-vip; its dependencies come from the proxy), else v1.2.2 from the proxy.

v1.2.2 is not v1.2.3 where the real lab looks: v1.2.3 has "Fix default kube config path handling" (#1658,
pkg/manager/manager.go). In v1.2.2 the --k8sConfigPath default (/etc/kubernetes/admin.conf) counts as an explicit
kubeconfig, so a control-plane static pod talks to the kubeconfig's server — the VIP it has yet to add — instead of
`kubernetes:<port>` (its hostAlias to the local API server): the lease is never taken and the VIP never comes up.
v1.2.2 does the same as v1.2.3 for the generator (cmd/, pkg/kubevip/config_generator.go) and the config checks (it
lacks only the optional `vip_skipdad`), which is what tests/test_kube_vip_upstream.py compares.
"""

from __future__ import annotations

from pathlib import Path

from tests.upstream_tools import go_tool, tools_dir

REFERENCE_VERSION = "v1.2.2"
PINNED_VERSION = "v1.2.3"
MODULE = "github.com/kube-vip/kube-vip"
SOURCE_V1_2_3 = tools_dir().parent / "src" / f"kube-vip-{PINNED_VERSION}"


def has_pinned_source() -> bool:
    return (SOURCE_V1_2_3 / "go.mod").is_file()


def build_kube_vip() -> Path:
    """kube-vip PINNED_VERSION from its source tree when present, else REFERENCE_VERSION; built once (cold about
    3 min of CPU), then cached."""
    if has_pinned_source():
        return go_tool("kube-vip", MODULE, PINNED_VERSION, MODULE, "main.Version", replace={MODULE: str(SOURCE_V1_2_3)})
    return go_tool("kube-vip", MODULE, REFERENCE_VERSION, MODULE, "main.Version")
