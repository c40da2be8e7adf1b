"""The real lab's chart repository (charts.py), without hosts: which charts a config gets, the archives' layout
and the index Helm reads, and the config pointed at the repository."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
import yaml

import charts
from hosts import LabError

URL = "https://198.19.255.2:8443"
PODINFO = {"name": "podinfo", "chart": "podinfo", "version": "6.9.2", "repo": "https://stefanprodan.github.io/podinfo"}
NODES = [{"name": "c1", "address": "198.18.0.11", "roles": ["control-plane"]}]


def test_a_config_gets_its_ingress_chart_and_each_releases_chart():
    wanted = charts.charts_for({"nodes": NODES, "helmReleases": [PODINFO]})
    assert [(c.name, c.version) for c in wanted] == [("ingress-nginx", "4.15.1"), ("podinfo", "6.9.2")]


def test_no_charts_without_ingress_or_releases():
    assert charts.charts_for({"nodes": NODES, "ingress": {"controller": "none"}}) == []


def test_a_chart_the_lab_lacks_is_named():
    with pytest.raises(LabError, match="traefik 37.3.0"):
        charts.charts_for({"nodes": NODES, "ingress": {"controller": "traefik"}})


def test_an_archive_is_laid_out_as_helm_package_makes_it():
    chart = charts.CHARTS[0]
    with tarfile.open(fileobj=io.BytesIO(chart.archive()), mode="r:gz") as tar:
        names = tar.getnames()
        meta = yaml.safe_load(tar.extractfile(f"{chart.name}/Chart.yaml"))
    assert all(name.startswith(f"{chart.name}/") for name in names)
    assert f"{chart.name}/values.yaml" in names
    assert (meta["name"], meta["version"]) == (chart.name, chart.version)
    assert "not the upstream chart" in meta["description"]


def test_the_index_lists_each_archive_with_its_digest(tmp_path):
    charts.write_repository(tmp_path, list(charts.CHARTS))
    index = yaml.safe_load((tmp_path / "index.yaml").read_text())
    assert index["apiVersion"] == "v1"
    for chart in charts.CHARTS:
        entry = index["entries"][chart.name][0]
        assert entry["version"] == chart.version and entry["urls"] == [chart.archive_name]
        assert entry["digest"] == hashlib.sha256((tmp_path / chart.archive_name).read_bytes()).hexdigest()


def test_the_config_takes_every_chart_from_the_repository():
    config = charts.from_chart_repository({"nodes": NODES, "helmReleases": [PODINFO]}, URL)
    assert config["ingress"]["repo"] == URL
    assert [r["repo"] for r in config["helmReleases"]] == [URL]


def test_no_ingress_repository_without_an_ingress_controller():
    config = charts.from_chart_repository({"nodes": NODES, "ingress": {"controller": "none"}}, URL)
    assert config["ingress"] == {"controller": "none"}
