"""The real lab's add-ons (issue 12): `real-addons.yaml` brought up by the real Pulumi CLI; flannel, the ingress-nginx
DaemonSet and a Helm release applied by the real pulumi-kubernetes provider to the real API server, the charts
fetched over HTTPS from the lab's chart repository through `ingress.repo` and `helmReleases[].repo`.

What this proves and what it does not: the objects are the real API server's, made by the real provider and
Helm; the charts are the lab's stand-ins (tests/lab/charts.py) with the upstream names, versions and the values
the program sets; the pods are bound by the real scheduler and DaemonSet controller, but the kubelet stand-in
reports bound pods Running and Ready WITHOUT RUNNING THEM, so flannel's network and the ingress controller's
serving are not exercised."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from scenario import lab_cluster

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def addons():
    with lab_cluster("real-addons.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        assert result.error is None, result.error
        yield cluster, config


def pods_by_node(cluster, namespace: str, selector: str) -> dict[str, str]:
    return {p["spec"].get("nodeName"): p["status"].get("phase")
            for p in cluster.kubectl(f"get pods -n {namespace} -l {selector}")["items"]}


def test_the_charts_come_from_the_labs_repository(addons):
    """ingress.repo and helmReleases[].repo point at the lab's repository, and Helm fetched both archives there."""
    cluster, config = addons
    assert config["ingress"]["repo"] == cluster.lab.charts.url
    assert [r["repo"] for r in config["helmReleases"]] == [cluster.lab.charts.url]
    log = (cluster.lab.charts.work / "charts.log").read_text()
    assert "GET /ingress-nginx-4.15.1.tgz" in log and "GET /podinfo-6.9.2.tgz" in log


def test_flannel_runs_on_every_node(addons):
    cluster, _ = addons
    daemonset = cluster.kubectl("get daemonset -n kube-flannel kube-flannel-ds")
    assert daemonset["status"]["desiredNumberScheduled"] == 2 and daemonset["status"]["numberReady"] == 2
    # Running as the kubelet stand-in reports it: flanneld itself does not run.
    assert pods_by_node(cluster, "kube-flannel", "app=flannel") == {"c1": "Running", "w1": "Running"}


def test_the_ingress_controller_is_a_host_network_daemonset_on_the_schedulable_node(addons):
    cluster, _ = addons
    daemonset = cluster.kubectl("get daemonset -n ingress-nginx ingress-nginx-controller")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    args = pod["containers"][0]["args"]
    assert "--validating-webhook=:8444" in args and "--report-node-internal-ip-address=true" in args
    # The control plane keeps its NoSchedule taint, which the chart does not tolerate.
    assert pods_by_node(cluster, "ingress-nginx", "app.kubernetes.io/component=controller") == {"w1": "Running"}


def test_the_ingress_namespace_allows_host_access(addons):
    cluster, _ = addons
    labels = cluster.kubectl("get namespace ingress-nginx")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def test_the_default_ingress_class_is_the_stack_output(addons):
    cluster, _ = addons
    ingress_class = cluster.kubectl("get ingressclass nginx")
    assert ingress_class["spec"]["controller"] == "k8s.io/ingress-nginx"
    assert ingress_class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    assert cluster.stack.outputs()["ingressClassName"] == "nginx"


def release_secret(cluster, namespace: str, name: str) -> dict:
    """Helm's release record (storage driver Secret: sh.helm.release.v1.NAME.vREVISION, its `release` key the
    base64 of the gzipped JSON: helm.sh/helm/v3@v3.18.6 pkg/storage/driver/secrets.go newSecretsObject, util.go
    encodeRelease)."""
    secret = cluster.kubectl(f"get secret -n {namespace} sh.helm.release.v1.{name}.v1")
    assert secret["type"] == "helm.sh/release.v1" and secret["metadata"]["labels"]["status"] == "deployed"
    return json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"]))))


def test_the_helm_releases_are_deployed_with_the_values_set(addons):
    cluster, _ = addons
    ingress = release_secret(cluster, "ingress-nginx", "ingress-nginx")
    assert ingress["chart"]["metadata"]["version"] == "4.15.1"
    assert ingress["config"]["controller"]["kind"] == "DaemonSet"
    podinfo = release_secret(cluster, "apps", "podinfo")
    assert podinfo["chart"]["metadata"]["version"] == "6.9.2"
    assert podinfo["config"] == {"replicaCount": 2, "ui": {"message": "kubeadm-cluster lab"}}


def test_the_helm_releases_objects_exist(addons):
    cluster, _ = addons
    deployment = cluster.kubectl("get deployment -n apps podinfo")
    assert deployment["spec"]["replicas"] == 2 and deployment["status"].get("readyReplicas") == 2
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PODINFO_UI_MESSAGE"] == "kubeadm-cluster lab"
    assert cluster.kubectl("get service -n apps podinfo")["spec"]["ports"][0]["port"] == 9898


def test_a_second_up_changes_nothing(addons):
    cluster, config = addons
    assert cluster.preview(config, "--expect-no-changes").returncode == 0
