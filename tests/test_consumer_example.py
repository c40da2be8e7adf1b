"""examples/consumer: a project that deploys onto the cluster through the kubeconfig output."""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi
import pytest

from harness import RecordingMonitor, unwrap

CONSUMER = Path(__file__).resolve().parent.parent / "examples" / "consumer"
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {client-key-data: c2VjcmV0}}]\n"


class ConsumerMocks(pulumi.runtime.Mocks):
    def __init__(self, ingress_class):
        self.ingress_class = ingress_class

    def new_resource(self, args):
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.name, "outputs": {
                "kubeconfig": KUBECONFIG, "clusterName": "dev", "ingressClassName": self.ingress_class},
                "secretOutputNames": ["kubeconfig"]}
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


def deploy_with(ingress_class):
    sys.path.insert(0, str(CONSUMER))
    try:
        from app import deploy
    finally:
        sys.path.remove(str(CONSUMER))
    mocks = ConsumerMocks(ingress_class)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="kubeadm-cluster-consumer", stack="dev", preview=False, monitor=monitor)
    outputs = {}

    @pulumi.runtime.test
    def program():
        result = deploy("organization/kubeadm-cluster/dev")
        return pulumi.Output.all(**result).apply(outputs.update)

    program()
    return monitor.records, outputs


@pytest.fixture(scope="module")
def with_ingress():
    return deploy_with("traefik")


def test_provider_gets_the_cluster_kubeconfig_as_a_secret(with_ingress):
    records, _ = with_ingress
    provider = next(r for r in records if r.typ == "pulumi:providers:kubernetes")
    assert provider.is_secret("kubeconfig")
    assert unwrap(provider.inputs["kubeconfig"]) == KUBECONFIG
    assert provider.plain("clusterIdentifier") == "dev"


def test_every_kubernetes_resource_uses_that_provider(with_ingress):
    records, _ = with_ingress
    provider = next(r for r in records if r.typ == "pulumi:providers:kubernetes")
    resources = [r for r in records if r.typ.startswith("kubernetes:")]
    assert {r.typ for r in resources} == {"kubernetes:core/v1:Namespace", "kubernetes:apps/v1:Deployment",
                                          "kubernetes:core/v1:Service", "kubernetes:networking.k8s.io/v1:Ingress"}
    assert all(r.provider.startswith(provider.urn + "::") for r in resources)


def test_ingress_uses_the_clusters_class(with_ingress):
    records, outputs = with_ingress
    ingress = next(r for r in records if r.typ == "kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress.plain("spec")["ingressClassName"] == "traefik"
    assert outputs["url"] == "http://hello.example.com/"


def test_no_url_when_the_cluster_has_no_controller():
    records, outputs = deploy_with(None)
    ingress = next(r for r in records if r.typ == "kubernetes:networking.k8s.io/v1:Ingress")
    assert ingress.plain("spec").get("ingressClassName") is None
    assert outputs["url"] is None
