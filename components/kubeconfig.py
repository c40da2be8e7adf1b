"""Phase 7: the admin kubeconfig read back from the first control plane, as a secret."""

from __future__ import annotations

import pulumi
import yaml

from components.remote import Context, node_command, node_script


def kubeconfig_for_endpoint(admin_conf: str, endpoint: str) -> str:
    """admin.conf with every cluster's server set to https://<endpoint>."""
    document = yaml.safe_load(admin_conf)
    if not isinstance(document, dict) or not document.get("clusters"):
        raise ValueError("the first control plane's admin.conf is not a kubeconfig")
    for cluster in document["clusters"]:
        cluster["cluster"]["server"] = f"https://{endpoint}"
    return yaml.safe_dump(document, sort_keys=False)


class Kubeconfig(pulumi.ComponentResource):
    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        node = ctx.spec.first_control_plane
        super().__init__("kubeadm-cluster:index:Kubeconfig", "kubeconfig", None, opts)
        renewal, version = ctx.spec.certificates_renew, ctx.spec.kubernetes_version
        self.command = node_command(
            "kubeconfig", ctx, node,
            create=node_script("kubeconfig.sh", {"RENEWAL": renewal, "K8S_VERSION": version}, node),
            secret_stdout=True,
            # Re-read after a certificate renewal and after an upgrade: both renew admin.conf's client
            # certificate (`kubeadm upgrade apply` renews admin.conf's unless told not to:
            # cmd/kubeadm/app/phases/upgrade/staticpods.go@v1.36.4 StaticPodControlPlane). The phase
            # runner puts this step after the first control plane's upgrade.
            triggers=[node.address, renewal, version],
            opts=pulumi.ResourceOptions(parent=self),
        )
        endpoint = ctx.spec.control_plane.endpoint
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            self.command.stdout.apply(lambda text: kubeconfig_for_endpoint(text, endpoint)))
        self.register_outputs({"kubeconfig": self.kubeconfig})
