"""SPEC §3: the stack outputs other projects read."""

from __future__ import annotations

import yaml

from harness import ADMIN_TOKEN, base_config, run_program


def test_outputs():
    run = run_program(base_config())
    assert run.outputs["apiServerEndpoint"] == "k8s-api.internal:6443"
    assert run.outputs["kubernetesVersion"] == "1.36.4"
    assert run.outputs["clusterName"] == "dev"
    assert run.outputs["nodes"][0] == {"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane"]}
    assert len(run.outputs["nodes"]) == 5
    assert run.outputs["ingressClassName"] == "nginx"


def test_kubeconfig_points_at_the_endpoint_and_is_secret():
    run = run_program(base_config())
    kubeconfig = yaml.safe_load(run.outputs["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://k8s-api.internal:6443"
    assert kubeconfig["users"][0]["user"] == {"token": ADMIN_TOKEN}
    assert "kubeconfig" in run.secret_outputs


def test_cluster_name_defaults_to_the_stack():
    config = base_config()
    config.pop("clusterName")
    run = run_program(config, stack="prod")
    assert run.outputs["clusterName"] == "prod"


def test_no_ingress_gives_a_null_class():
    run = run_program(base_config(ingress={"controller": "none"}))
    assert run.outputs["ingressClassName"] is None


def test_certificate_expiry_is_reported():
    run = run_program(base_config())
    assert {"name": "admin.conf", "expires": "2027-11-24T21:00:00Z", "authority": "ca"} in run.outputs["certificateExpiry"]


def test_ipv6_endpoint_is_bracketed():
    run = run_program(base_config(controlPlane={"endpoint": "[fd00::100]:6443"}))
    assert run.outputs["apiServerEndpoint"] == "[fd00::100]:6443"
    assert yaml.safe_load(run.outputs["kubeconfig"])["clusters"][0]["cluster"]["server"] == "https://[fd00::100]:6443"
