"""ingress.repo: the built-in ingress chart's repository, for air-gapped sites that mirror it."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_spec
from components.ingress import UPSTREAM_REPOS
from harness import base_config, run_program

MIRROR = "https://charts.mirror.example/ingress-nginx"


@pytest.mark.parametrize("controller", ["ingress-nginx", "traefik"])
def test_the_upstream_repository_by_default(controller):
    run = run_program(base_config(ingress={"controller": controller}))
    chart = run.named(controller)
    assert chart.plain("chart") == controller
    assert chart.plain("repositoryOpts") == {"repo": UPSTREAM_REPOS[controller]}


def test_an_https_mirror_replaces_the_upstream_repository():
    chart = run_program(base_config(ingress={"repo": MIRROR})).named("ingress-nginx")
    assert chart.plain("chart") == "ingress-nginx"
    assert chart.plain("repositoryOpts") == {"repo": MIRROR}


def test_an_oci_mirror_is_part_of_the_chart_reference():
    config = base_config(ingress={"controller": "traefik", "repo": "oci://registry.example/charts/"})
    chart = run_program(config).named("traefik")
    assert chart.plain("chart") == "oci://registry.example/charts/traefik"
    assert not chart.plain("repositoryOpts")


def test_the_pinned_chart_version_is_kept_with_a_mirror():
    chart = run_program(base_config(ingress={"repo": MIRROR, "chartVersion": "4.15.0"})).named("ingress-nginx")
    assert chart.plain("version") == "4.15.0"


@pytest.mark.parametrize("bad", ["charts.mirror.example/ingress-nginx", "ftp://mirror.example/charts",
                                 "https://mirror example", ["https://a"]])
def test_a_bad_repository_is_rejected_naming_the_key(bad):
    with pytest.raises(ConfigError) as raised:
        parse_spec(base_config(ingress={"repo": bad}))
    message = str(raised.value)
    assert "ingress.repo" in message
    assert "oci://" in message


def test_a_bad_repository_is_reported_with_the_other_problems():
    with pytest.raises(ConfigError) as raised:
        parse_spec(base_config(ingress={"repo": "mirror", "chartVersion": "latest"}))
    assert "ingress.repo" in str(raised.value) and "ingress.chartVersion" in str(raised.value)
