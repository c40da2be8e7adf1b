"""The user's Helm releases (helmReleases), each pinned, in its own (created) namespace."""

from __future__ import annotations

from typing import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.config import HelmRelease

BUILT_IN_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default")


def chart_reference(chart: str, repo: str | None) -> tuple[str, str | None]:
    """(chart, repository): an oci:// repository is part of the chart reference in Helm."""
    if repo and repo.startswith("oci://"):
        return f"{repo.rstrip('/')}/{chart}", None
    return chart, repo


class HelmReleases(pulumi.ComponentResource):
    def __init__(self, releases: tuple[HelmRelease, ...],
                 existing_namespaces: Mapping[str, pulumi.Input[str]] | None = None,
                 secret_values: bool = False, opts: pulumi.ResourceOptions | None = None):
        """`existing_namespaces`: namespaces the other add-ons already own (name → its metadata.name output).
        A second Namespace resource for the same object would delete it, and everything in it, when
        either side lets go. `secret_values`: helmReleases was set as a secret, so are the values."""
        super().__init__("kubeadm-cluster:index:HelmReleases", "helm-releases", None, opts)
        namespaces: dict[str, pulumi.Input[str]] = dict(existing_namespaces or {})
        self.releases = []
        for release in releases:
            if release.namespace not in BUILT_IN_NAMESPACES and release.namespace not in namespaces:
                namespaces[release.namespace] = k8s.core.v1.Namespace(
                    f"namespace-{release.namespace}", metadata={"name": release.namespace},
                    opts=pulumi.ResourceOptions(parent=self)).metadata["name"]
            chart, repo = chart_reference(release.chart, release.repo)
            self.releases.append(k8s.helm.v3.Release(
                release.name,
                name=release.name,
                chart=chart,
                version=release.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo) if repo else None,
                namespace=namespaces.get(release.namespace, release.namespace),
                values=pulumi.Output.secret(dict(release.values)) if secret_values else dict(release.values),
                timeout=release.timeout,
                skip_await=release.skip_await,
                opts=pulumi.ResourceOptions(parent=self),
            ))
        self.register_outputs({})
