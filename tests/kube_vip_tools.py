"""The real kube-vip, built through upstream_tools.go_tool (a module without replace directives).

The pinned image is v1.2.3 (components/config.py KUBE_VIP_IMAGE), but the proxy answers 403 "not available" for
github.com/kube-vip/kube-vip@v1.2.3 (and for its commit 7ce55caf), so the build is v1.2.2, the newest it serves.

v1.2.2 does the same as v1.2.3 for the generator (cmd/, pkg/kubevip/config_generator.go) and the config checks (it
lacks only the optional `vip_skipdad`), which is what tests/test_kube_vip_upstream.py compares. It is not v1.2.3
as a running control-plane static pod: v1.2.3 has "Fix default kube config path handling" (#1658,
pkg/manager/manager.go). In v1.2.2 the --k8sConfigPath default (/etc/kubernetes/admin.conf) counts as an explicit
kubeconfig, so the pod talks to the kubeconfig's server — the VIP it has yet to add — instead of `kubernetes:<port>`
(its hostAlias to the local API server): the lease is never taken and the VIP never comes up (seen in the real HA
lab). So the real lab cannot run the program's kube-vip HA until the proxy serves v1.2.3
(tests/lab/test_scenarios_real_ha.py skips, saying so).
"""

from __future__ import annotations

from pathlib import Path

from tests.upstream_tools import go_tool

REFERENCE_VERSION = "v1.2.2"
PINNED_VERSION = "v1.2.3"
MODULE = "github.com/kube-vip/kube-vip"


def build_kube_vip() -> Path:
    """kube-vip REFERENCE_VERSION from the proxy, built once (cold about 3 min of CPU), then cached."""
    return go_tool("kube-vip", MODULE, REFERENCE_VERSION, MODULE, "main.Version")
