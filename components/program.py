"""The program: config → validated spec → cluster phases → add-ons → stack outputs."""

from __future__ import annotations

import pulumi

from components.addons import Addons
from components.cluster import KubeadmCluster
from components.config import load_spec
from components.host_keys import HostKeys
from components.remote import Context


def main() -> dict[str, pulumi.Input]:
    """Build the stack; returns the stack outputs it exported (for tests and the lab)."""
    spec, secrets = load_spec()
    ctx = Context(spec, secrets.private_key, secrets.keepalived_auth_pass)
    ctx = ctx.with_known_hosts(HostKeys(ctx).known_hosts)
    cluster = KubeadmCluster(spec.cluster_name, ctx)
    addons = Addons("addons", spec, cluster.kubeconfig)

    outputs: dict[str, pulumi.Input] = {
        "kubeconfig": pulumi.Output.secret(cluster.kubeconfig),
        "scopedKubeconfigs": pulumi.Output.secret(cluster.scoped_kubeconfigs),
        "apiServerEndpoint": spec.control_plane.endpoint,
        "kubernetesVersion": spec.kubernetes_version,
        "clusterName": spec.cluster_name,
        "nodes": [{"name": n.name, "address": n.address, "roles": list(n.roles)} for n in spec.nodes],
        "ingressClassName": addons.ingress_class_name,
        "certificateExpiry": cluster.certificate_expiry,
        "etcdBackup": cluster.etcd_backup,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
