"""`cni.type: none`: the user brings their own CNI; the program installs no flannel and waits for none."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_spec
from harness import base_config, run_program

REPO = "https://charts.example/"


@pytest.fixture(scope="module")
def run():
    return run_program(base_config(
        cni={"type": "none"},
        helmReleases=[{"name": "podinfo", "chart": "podinfo", "version": "6.9.2", "namespace": "apps",
                       "repo": REPO}]))


def test_none_is_a_valid_cni_type():
    assert parse_spec(base_config(cni={"type": "none"})).cni.type == "none"


def test_an_unknown_cni_type_names_both_choices():
    with pytest.raises(ConfigError) as error:
        parse_spec(base_config(cni={"type": "calico"}))
    assert "cni.type" in str(error.value) and "flannel, none" in str(error.value)


def test_no_flannel_resources(run):
    assert not [r for r in run.resources if "flannel" in r.name or r.typ == "kubeadm-cluster:index:Flannel"]


def test_ingress_and_releases_are_still_installed_through_the_cluster_provider(run):
    provider = run.named("addons-kubernetes")
    for name in ("ingress-nginx", "podinfo"):
        assert run.named(name).provider.startswith(provider.urn + "::"), name
