"""Issue 14 in the lab: the exported kubeconfig is revoked by a config change, the nodes' admin.conf untouched.

The API server here is the stand-in's (tests/lab/standins/standin.py: token Secrets, the token controller,
token authentication and RBAC imitated after Kubernetes v1.36.4, cited there). The same proof against the
real kube-apiserver, on a control plane outside the lab: tests/test_kubeconfig_revocation_real.py.
"""

from __future__ import annotations

import pytest
import yaml

from cluster import without_addons
from test_scenarios import lab_cluster

pytestmark = pytest.mark.lab


def kubectl_with(cluster, kubeconfig: str, command: str):
    """kubectl on the control plane with `kubeconfig` (given on stdin, kept in a private temporary file)."""
    script = f'f=$(mktemp); trap \'rm -f "$f"\' EXIT; cat >"$f"; sudo kubectl --kubeconfig "$f" {command}'
    return cluster.lab.ssh("solo", script, check=False, stdin=kubeconfig)


def test_a_new_revision_revokes_the_old_kubeconfig_and_leaves_admin_conf_working():
    with lab_cluster("single-cri-o-bastion.yaml") as cluster:
        config, _ = without_addons(cluster.config())  # the lab has no API server for the add-ons
        config["kubeconfig"] = {"scoped": [{"name": "ci", "namespaces": ["apps"], "role": "edit"}]}
        assert cluster.up(config).error is None
        outputs = cluster.stack.outputs(show_secrets=True)
        old, ci = outputs["kubeconfig"], outputs["scopedKubeconfigs"]["ci"]
        assert "solo" in kubectl_with(cluster, old, "get nodes").stdout
        assert kubectl_with(cluster, ci, "get pods -n apps").returncode == 0
        refused = kubectl_with(cluster, ci, "get nodes")
        assert "cannot list resource \"nodes\" in API group \"\" at the cluster scope" in refused.stderr

        revoked = dict(config, kubeconfig=dict(config["kubeconfig"], revision="2"))
        steps = cluster.preview(revoked).preview["steps"]
        assert {s["urn"].rsplit("::", 1)[1]: s["op"] for s in steps
                if "command:remote:Command" in s["urn"] and s["op"] != "same"} == {"kubeconfig": "replace"}
        assert cluster.up(revoked).error is None
        new = cluster.stack.outputs(show_secrets=True)
        assert yaml.safe_load(new["kubeconfig"])["users"][0]["name"] != yaml.safe_load(old)["users"][0]["name"]

        for stale in (old, ci):
            denied = kubectl_with(cluster, stale, "get nodes")
            assert denied.returncode == 1
            assert denied.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"
        assert "solo" in kubectl_with(cluster, new["kubeconfig"], "get nodes").stdout
        assert kubectl_with(cluster, new["scopedKubeconfigs"]["ci"], "get pods -n apps").returncode == 0
        admin = cluster.lab.ssh("solo", "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")
        assert "solo" in admin.stdout
        assert cluster.preview(revoked, "--expect-no-changes").returncode == 0
