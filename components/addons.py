"""Phase 7b: the cluster's add-ons through one explicit Kubernetes provider.

flannel (unless `cni.type` is none) goes in as soon as the kubeconfig is read; the ingress controller and the
user's Helm releases wait for flannel's DaemonSet to be ready. Only CustomResource-based types are
used (typed resources and helm.v3.Release), so a fresh stack's preview works while the kubeconfig
is still unknown.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.config import ClusterSpec
from components.flannel import Flannel
from components.helm_releases import HelmReleases
from components.ingress import Ingress


class Addons(pulumi.ComponentResource):
    def __init__(self, name: str, spec: ClusterSpec, kubeconfig: pulumi.Output[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:Addons", name, None, opts)
        # A stable identity: a re-read kubeconfig (renewed certificates) must not replace the
        # provider and with it every Kubernetes resource.
        # delete_unreachable stays unset: always on, a cluster that is only briefly unreachable during
        # a refresh would silently lose its objects from the state. For machines gone for good,
        # PULUMI_K8S_DELETE_UNREACHABLE=true (read by the SDK while the argument is unset) lets
        # `pulumi destroy` finish.
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            kubeconfig=pulumi.Output.secret(kubeconfig),
            cluster_identifier=spec.cluster_name,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.provider})
        cni_namespaces: dict[str, pulumi.Output[str]] = {}
        after_cni = on_cluster
        if spec.cni.type == "flannel":  # none: the user's own CNI, which nothing here can wait for
            cni = Flannel(spec, on_cluster)
            cni_namespaces = cni.owned_namespaces
            after_cni = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[cni.daemon_set]))
        ingress = Ingress(spec, after_cni)
        HelmReleases(spec.helm_releases, {**cni_namespaces, **ingress.owned_namespaces},
                     "helmReleases" in spec.secret_config_keys, after_cni)
        self.ingress_class_name = ingress.class_name
        self.register_outputs({"ingressClassName": self.ingress_class_name})
