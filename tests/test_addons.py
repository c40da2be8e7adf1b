"""Issue 3: flannel, the ingress DaemonSet and Helm releases through one explicit provider."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.config import FLANNEL_VERSION, TRAEFIK_CHART_VERSION
from components.ingress import deep_merge
from harness import base_config, run_program

K8S_PREFIX = "kubernetes:"


REPO = "https://charts.example/"


def k8s_resources(run):
    return [r for r in run.resources if r.typ.startswith(K8S_PREFIX) and r.typ != "pulumi:providers:kubernetes"]


def of_kind(run, typ):
    return [r for r in run.resources if r.typ == typ]


@pytest.fixture(scope="module")
def run():
    return run_program(base_config(
        networking={"podSubnet": "10.200.0.0/16"}, cni={"backend": "host-gw", "iface": "eth1"},
        helmReleases=[
            {"name": "metrics-server", "chart": "metrics-server", "version": "3.13.0", "namespace": "kube-system",
             "repo": "https://kubernetes-sigs.github.io/metrics-server/", "values": {"args": ["--kubelet-insecure-tls"]}},
            {"name": "podinfo", "chart": "podinfo", "version": "6.9.2", "namespace": "apps",
             "repo": "oci://ghcr.io/stefanprodan/charts", "timeout": 600, "skipAwait": True},
        ]))


def test_flannel_configmap_carries_the_pod_subnet_and_backend(run):
    configmap = of_kind(run, "kubernetes:core/v1:ConfigMap")[0]
    net_conf = json.loads(configmap.plain("data")["net-conf.json"])
    assert net_conf["Network"] == "10.200.0.0/16"
    assert net_conf["Backend"]["Type"] == "host-gw"


def test_flannel_daemonset_gets_the_iface_argument(run):
    daemonset = of_kind(run, "kubernetes:apps/v1:DaemonSet")[0]
    flanneld = daemonset.plain("spec")["template"]["spec"]["containers"][0]
    assert flanneld["args"] == ["--ip-masq", "--kube-subnet-mgr", "--iface=eth1"]


def test_no_iface_argument_unless_configured():
    daemonset = of_kind(run_program(base_config()), "kubernetes:apps/v1:DaemonSet")[0]
    assert not any(a.startswith("--iface") for a in daemonset.plain("spec")["template"]["spec"]["containers"][0]["args"])


def test_flannel_objects_are_created_in_order(run):
    def named(kind):
        return next(r.name for r in run.resources if r.typ == kind)

    namespace, rbac = named("kubernetes:core/v1:Namespace"), named("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    binding = named("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    account, configmap = named("kubernetes:core/v1:ServiceAccount"), named("kubernetes:core/v1:ConfigMap")
    daemonset = named("kubernetes:apps/v1:DaemonSet")
    assert run.depends_on(account, namespace)
    assert run.depends_on(binding, rbac) and run.depends_on(binding, account)
    assert run.depends_on(configmap, binding)
    assert run.depends_on(daemonset, configmap)


def test_flannel_goes_in_as_soon_as_the_kubeconfig_is_read(run):
    daemonset = of_kind(run, "kubernetes:apps/v1:DaemonSet")[0]
    provider = of_kind(run, "pulumi:providers:kubernetes")[0]
    assert run.depends_on(provider.name, "kubeconfig")
    assert not run.depends_on(daemonset.name, "w1-join")


def test_every_kubernetes_resource_uses_the_explicit_provider(run):
    provider = of_kind(run, "pulumi:providers:kubernetes")
    assert len(provider) == 1
    for resource in k8s_resources(run):
        assert resource.provider.startswith(provider[0].urn + "::"), resource.name


def test_provider_kubeconfig_is_secret_with_a_stable_cluster_identifier(run):
    provider = of_kind(run, "pulumi:providers:kubernetes")[0]
    assert provider.is_secret("kubeconfig")
    assert provider.plain("clusterIdentifier") == "dev"


def test_ingress_nginx_runs_as_a_bare_metal_daemonset(run):
    release = run.named("ingress-nginx")
    assert release.plain("version") == "4.15.1"
    assert release.plain("repositoryOpts")["repo"] == "https://kubernetes.github.io/ingress-nginx"
    controller = release.plain("values")["controller"]
    assert controller["kind"] == "DaemonSet"
    assert controller["hostNetwork"] is True and controller["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert controller["service"] == {"enabled": False}
    assert controller["ingressClassResource"]["default"] is True
    assert controller["reportNodeInternalIp"] is True and controller["publishService"] == {"enabled": False}
    assert release.plain("namespace") == "ingress-nginx"


def test_host_port_mode_when_host_network_is_off():
    release = run_program(base_config(ingress={"hostNetwork": False})).named("ingress-nginx")
    controller = release.plain("values")["controller"]
    assert controller["hostPort"] == {"enabled": True}
    assert "hostNetwork" not in controller


def test_user_values_are_merged_over_ours():
    release = run_program(base_config(ingress={"values": {"controller": {"config": {"use-forwarded-headers": "true"},
                                                                          "service": {"enabled": True}}}})
                          ).named("ingress-nginx")
    controller = release.plain("values")["controller"]
    assert controller["config"] == {"use-forwarded-headers": "true"}
    assert controller["service"] == {"enabled": True}
    assert controller["kind"] == "DaemonSet"


def test_traefik_runs_the_same_way():
    run = run_program(base_config(ingress={"controller": "traefik"}))
    release = run.named("traefik")
    values = release.plain("values")
    assert release.plain("version") == TRAEFIK_CHART_VERSION
    assert values["deployment"]["kind"] == "DaemonSet"
    assert values["ports"]["web"]["hostPort"] == 80 and values["ports"]["websecure"]["hostPort"] == 443
    assert values["service"] == {"enabled": False}
    assert values["ingressClass"]["isDefaultClass"] is True
    assert run.outputs["ingressClassName"] == "traefik"


def test_traefik_replaces_pods_one_node_at_a_time():
    # The chart's default maxSurge 1 would start a second pod on a node whose host ports are taken.
    values = run_program(base_config(ingress={"controller": "traefik"})).named("traefik").plain("values")
    assert values["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}


def test_ingress_class_name_follows_a_class_renamed_in_the_values():
    run = run_program(base_config(ingress={"values": {"controller": {"ingressClassResource": {"name": "public"}}}}))
    assert run.outputs["ingressClassName"] == "public"


def test_no_ingress_controller():
    run = run_program(base_config(ingress={"controller": "none"}))
    assert not of_kind(run, "kubernetes:helm.sh/v3:Release")
    assert run.outputs["ingressClassName"] is None


def test_helm_releases_are_pinned_in_their_namespaces_after_the_cni(run):
    daemonset = of_kind(run, "kubernetes:apps/v1:DaemonSet")[0]
    metrics = run.named("metrics-server")
    assert metrics.plain("version") == "3.13.0"
    assert metrics.plain("namespace") == "kube-system"
    assert metrics.plain("values") == {"args": ["--kubelet-insecure-tls"]}
    for name in ("metrics-server", "podinfo", "ingress-nginx"):
        assert run.depends_on(name, daemonset.name), name


def test_namespaces_are_created_only_when_not_built_in(run):
    namespaces = {r.plain("metadata")["name"] for r in of_kind(run, "kubernetes:core/v1:Namespace")}
    assert "apps" in namespaces and "kube-system" not in namespaces
    assert run.depends_on("podinfo", "namespace-apps")


def test_a_release_in_an_add_on_namespace_shares_its_namespace_resource():
    run = run_program(base_config(helmReleases=[
        {"name": "extra-nginx", "chart": "x", "repo": REPO, "version": "1.0.0", "namespace": "ingress-nginx"},
        {"name": "extra-flannel", "chart": "y", "repo": REPO, "version": "1.0.0", "namespace": "kube-flannel"}]))
    names = [r.plain("metadata")["name"] for r in of_kind(run, "kubernetes:core/v1:Namespace")]
    assert sorted(names) == ["ingress-nginx", "kube-flannel"]
    assert run.depends_on("extra-nginx", "ingress-nginx-namespace")
    assert run.depends_on("extra-flannel", "flannel-namespace-kube-flannel")


def test_oci_repositories_are_chart_references(run):
    podinfo = run.named("podinfo")
    assert podinfo.plain("chart") == "oci://ghcr.io/stefanprodan/charts/podinfo"
    assert not podinfo.plain("repositoryOpts")
    assert podinfo.plain("timeout") == 600 and podinfo.plain("skipAwait") is True


def test_fresh_stack_preview_succeeds_with_an_unknown_kubeconfig():
    run = run_program(base_config(helmReleases=[{"name": "m", "chart": "m", "repo": REPO, "version": "1.0.0"}]),
                      preview=True)
    provider = of_kind(run, "pulumi:providers:kubernetes")[0]
    assert isinstance(provider.plain("kubeconfig"), pulumi.output.Unknown)
    assert of_kind(run, "kubernetes:apps/v1:DaemonSet")
    assert {r.typ for r in run.resources if not r.custom} >= {"kubeadm-cluster:index:Flannel"}
    assert not any(r.typ.startswith(("kubernetes:yaml/v2", "kubernetes:helm.sh/v4", "kubernetes:kustomize"))
                   for r in run.resources)


def test_deep_merge():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}) == {"a": {"b": 3, "c": 2}, "d": [2]}


def test_flannel_version_is_the_configured_default():
    assert FLANNEL_VERSION == "v0.28.9"
