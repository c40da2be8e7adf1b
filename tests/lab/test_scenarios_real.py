"""The lab's real Kubernetes (issue 12): `real-control-plane.yaml` brought up by the real Pulumi CLI with the real
kubeadm, kubectl, containerd, etcd, kube-apiserver, kube-controller-manager and kube-scheduler; the kubelet is the
one stand-in (standins/kubelet.py). What each test asserts comes from the real API server or the engine."""

from __future__ import annotations

import pytest
import yaml

from scenario import lab_cluster

pytestmark = pytest.mark.lab

CONTROL_PLANE_PODS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


@pytest.fixture(scope="module")
def real():
    with lab_cluster("real-control-plane.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        yield cluster, config, result


def condition(obj: dict, kind: str) -> str | None:
    return next((c["status"] for c in obj["status"].get("conditions", []) if c["type"] == kind), None)


def test_every_node_joins_with_its_role_and_version_as_the_real_api_server_reports(real):
    cluster, config, _ = real
    assert cluster.problems(config) == []
    nodes = {n["metadata"]["name"]: n for n in cluster.kubectl("get nodes")["items"]}
    assert {name: condition(node, "Ready") for name, node in nodes.items()} == {"c1": "True", "w1": "True"}
    # kubeadm's mark-control-plane phase: the label and the NoSchedule taint on c1 only.
    assert [t["key"] for t in nodes["c1"]["spec"].get("taints", [])] == ["node-role.kubernetes.io/control-plane"]
    assert not nodes["w1"]["spec"].get("taints")


def test_the_control_plane_runs_as_kubeadm_static_pods_with_mirror_pods_ready(real):
    cluster, _, _ = real
    pods = {p["metadata"]["name"]: p for p in cluster.kubectl("get pods -n kube-system")["items"]}
    for component in CONTROL_PLANE_PODS:
        pod = pods[f"{component}-c1"]
        assert pod["metadata"]["annotations"]["kubernetes.io/config.source"] == "file"
        assert pod["status"]["phase"] == "Running" and condition(pod, "Ready") == "True", component


def test_the_summary_names_the_real_versions(real):
    cluster, _, _ = real
    assert cluster.real_versions() == "real kubeadm v1.36.4, kube-apiserver v1.36.4, etcd 3.6.8-0"


def test_a_second_up_changes_nothing(real):
    cluster, config, _ = real
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


def test_the_exported_kubeconfig_reaches_the_real_api_server_from_the_client(real):
    """The stack output a consumer reads: a ServiceAccount token, used here by the real kubectl on c1."""
    cluster, _, _ = real
    kubeconfig = cluster.stack.outputs(show_secrets=True)["kubeconfig"]
    assert yaml.safe_load(kubeconfig)["users"][0]["user"].get("token")
    script = 'f=$(mktemp); trap \'rm -f "$f"\' EXIT; cat >"$f"; kubectl --kubeconfig "$f" get nodes -o name'
    done = cluster.lab.ssh("c1", script, stdin=kubeconfig)
    assert sorted(done.stdout.split()) == ["node/c1", "node/w1"]


def test_kubelet_serving_certificates_are_approved_by_the_program(real):
    """security.kubeletServingCertificates (the default): each kubelet's serving CSR approved by the program's
    approver on the first control plane, which the real API server records as the approver."""
    cluster, _, _ = real
    # The timer elapsing starts the approver (systemd.timer(5) Unit=; the lab has no systemd): a kubelet asks for its
    # serving certificate in the background once registered, so the approver's run at setup may come before that.
    cluster.lab.ssh("c1", "sudo systemctl start kubeadm-cluster-kubelet-serving.service")
    csrs = [c for c in cluster.kubectl("get csr")["items"] if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"]
    approved = {c["spec"]["username"] for c in csrs if condition(c, "Approved") == "True"}
    assert approved == {"system:node:c1", "system:node:w1"}


def kubectl_with(cluster, kubeconfig: str, command: str):
    """The real kubectl on c1 with `kubeconfig` (given on stdin, kept in a private temporary file)."""
    script = f'f=$(mktemp); trap \'rm -f "$f"\' EXIT; cat >"$f"; kubectl --kubeconfig "$f" {command}'
    return cluster.lab.ssh("c1", script, check=False, stdin=kubeconfig)


def test_a_new_revision_revokes_the_old_kubeconfigs_at_the_real_api_server_and_leaves_admin_conf_working(real):
    """Issue 14: the exported and scoped kubeconfigs are ServiceAccount tokens; a new kubeconfig.revision replaces
    only the kubeconfig step, and the real API server's token authenticator then refuses the old tokens (their
    Secrets are gone). Last in the module: it changes the stack's config."""
    cluster, config, _ = real
    scoped = dict(config, kubeconfig={"scoped": [{"name": "ci", "namespaces": ["apps"], "role": "edit"}]})
    assert cluster.up(scoped).error is None
    outputs = cluster.stack.outputs(show_secrets=True)
    old, ci = outputs["kubeconfig"], outputs["scopedKubeconfigs"]["ci"]
    assert kubectl_with(cluster, ci, "get pods -n apps").returncode == 0
    refused = kubectl_with(cluster, ci, "get nodes")
    assert 'cannot list resource "nodes" in API group "" at the cluster scope' in refused.stderr

    revoked = dict(scoped, kubeconfig=dict(scoped["kubeconfig"], revision="2"))
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
    assert "node/c1" in kubectl_with(cluster, new["kubeconfig"], "get nodes -o name").stdout
    assert kubectl_with(cluster, new["scopedKubeconfigs"]["ci"], "get pods -n apps").returncode == 0
    admin = cluster.lab.ssh("c1", "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o name")
    assert "node/c1" in admin.stdout
    assert cluster.preview(revoked, "--expect-no-changes").returncode == 0
