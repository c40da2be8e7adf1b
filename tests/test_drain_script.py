"""drain.sh run for real with bash against a kubectl test double that prints what kubectl drain prints.

The output below is assembled from the format strings of kubectl at kubernetes-1.36.3
(kubernetes/kubectl pkg/drain/drain.go evictPods, pkg/cmd/drain/drain.go RunDrain and
deleteOrEvictPodsSimple) and the API server's PodDisruptionBudget refusal (kubernetes
pkg/registry/core/pod/storage/eviction.go checkAndDecrement: HTTP 429 "Cannot evict pod as it would
violate the pod's disruption budget.").
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.scripts import COMPONENTS_DIR

PDB_REFUSAL = "Cannot evict pod as it would violate the pod's disruption budget."

# kubectl drain w1 --timeout=5m, two pods held by budgets, one evicted (stdout and stderr interleaved).
DRAIN_BLOCKED_BY_PDB = f"""node/w1 cordoned
Warning: ignoring DaemonSet-managed Pods: kube-flannel/kube-flannel-ds-7xk2p, ingress-nginx/ingress-nginx-controller-9fz4q
evicting pod shop/web-0
evicting pod shop/cart-5d8f7c9b4-x2m9q
evicting pod monitoring/grafana-6f9c8d7b5-kq7zt
error when evicting pods/"web-0" -n "shop" (will retry after 5s): {PDB_REFUSAL}
error when evicting pods/"cart-5d8f7c9b4-x2m9q" -n "shop" (will retry after 5s): {PDB_REFUSAL}
pod/grafana-6f9c8d7b5-kq7zt evicted
evicting pod shop/web-0
error when evicting pods/"web-0" -n "shop" (will retry after 5s): {PDB_REFUSAL}
evicting pod shop/cart-5d8f7c9b4-x2m9q
error when evicting pods/"cart-5d8f7c9b4-x2m9q" -n "shop" (will retry after 5s): {PDB_REFUSAL}
evicting pod shop/web-0
There are pending pods in node "w1" when an error occurred: [error when evicting pods/"web-0" -n "shop": global timeout reached: 5m0s, error when evicting pods/"cart-5d8f7c9b4-x2m9q" -n "shop": global timeout reached: 5m0s]
pod/web-0
pod/cart-5d8f7c9b4-x2m9q
error: unable to drain node "w1" due to error: [error when evicting pods/"web-0" -n "shop": global timeout reached: 5m0s, error when evicting pods/"cart-5d8f7c9b4-x2m9q" -n "shop": global timeout reached: 5m0s], continuing command...
There are pending nodes to be drained:
 w1
error: [error when evicting pods/"web-0" -n "shop": global timeout reached: 5m0s, error when evicting pods/"cart-5d8f7c9b4-x2m9q" -n "shop": global timeout reached: 5m0s]
"""

# A pod that takes longer than the timeout to terminate: no budget involved.
DRAIN_SLOW_TERMINATION = """node/w1 cordoned
evicting pod shop/batch-7d9f
error when waiting for pod "batch-7d9f" in namespace "shop" to terminate: context deadline exceeded
There are pending nodes to be drained:
 w1
error: error when waiting for pod "batch-7d9f" in namespace "shop" to terminate: context deadline exceeded
"""


def run_drain(tmp_path: Path, code: str, kubectl_output: str, kubectl_status: int) -> subprocess.CompletedProcess:
    """Runs `code` with drain.sh and upgrade-lib.sh loaded and a kubectl double that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "out.txt").write_text(kubectl_output)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"""#!/usr/bin/env bash
echo "$*" >>{tmp_path}/calls
if [[ $* == *" drain "* ]]; then cat {tmp_path}/out.txt; exit {kubectl_status}; fi
""")
    kubectl.chmod(0o755)
    sources = "".join(f"source {COMPONENTS_DIR / name}\n" for name in ("common.sh", "drain.sh", "upgrade-lib.sh"))
    params = "DRAIN_TIMEOUT=5m DRAIN_GRACE_PERIOD=-1 DRAIN_SKIP_WAIT_FOR_DELETE_TIMEOUT=0 K8S_VERSION=1.36.4\n"
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + params + sources + code], capture_output=True,
                          text=True, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})


def test_blockers_are_the_pods_a_budget_refused_each_named_once(tmp_path):
    result = run_drain(tmp_path, "drain_blockers <" + str(tmp_path / "out.txt"), DRAIN_BLOCKED_BY_PDB, 1)
    assert result.stdout.split() == ["shop/cart-5d8f7c9b4-x2m9q", "shop/web-0"]


def test_an_upgrade_drain_blocked_by_a_budget_fails_naming_the_pods(tmp_path):
    result = run_drain(tmp_path, "drain_for_upgrade w1", DRAIN_BLOCKED_BY_PDB, 1)
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if "ERROR:" in line]
    assert len(error) == 1
    assert "w1 was not drained within 5m" in error[0]
    assert "PodDisruptionBudget allows no disruption of pod shop/cart-5d8f7c9b4-x2m9q, shop/web-0" in error[0]
    assert "stays cordoned" in error[0]


def test_a_drain_failing_for_another_reason_reports_kubectls_last_error(tmp_path):
    result = run_drain(tmp_path, "drain_for_upgrade w1", DRAIN_SLOW_TERMINATION, 1)
    assert result.returncode == 1
    assert 'kubectl drain failed: error: error when waiting for pod "batch-7d9f" in namespace "shop"' in result.stderr
    assert "PodDisruptionBudget" not in result.stderr


def test_kubectl_output_reaches_the_log_not_stdout(tmp_path):
    result = run_drain(tmp_path, "drain_for_upgrade w1", "node/w1 cordoned\nnode/w1 drained\n", 0)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "node/w1 drained" in result.stderr


def test_drain_passes_the_configured_flags(tmp_path):
    run_drain(tmp_path, "DRAIN_TIMEOUT=90s DRAIN_GRACE_PERIOD=30 DRAIN_SKIP_WAIT_FOR_DELETE_TIMEOUT=10\n"
                        "drain_node w1", "", 0)
    drain = [line for line in (tmp_path / "calls").read_text().splitlines() if " drain " in line]
    assert drain == ["--kubeconfig /etc/kubernetes/admin.conf drain w1 --ignore-daemonsets --delete-emptydir-data "
                     "--force --timeout=90s --grace-period=30 --skip-wait-for-delete-timeout=10"]
