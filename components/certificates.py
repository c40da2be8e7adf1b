"""Day 2: certificate renewal on every control plane (one at a time) and the expiry report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi

from components.config import API_SERVER_PORT, Node
from components.remote import Context, node_command, node_script

if TYPE_CHECKING:
    from components.etcd import ExternalEtcd


class CertificateRenewal(pulumi.ComponentResource):
    """Renews when certificates.renew takes a new value; a no-op otherwise."""

    def __init__(self, ctx: Context, node: Node, opts: pulumi.ResourceOptions | None = None,
                 etcd: ExternalEtcd | None = None):
        """`etcd`: the ExternalEtcd, whose members renew first and hand over the API servers' client pair."""
        super().__init__("kubeadm-cluster:index:CertificateRenewal", node.name, None, opts)
        after = [etcd.renewed] if etcd is not None else []
        self.command = node_command(
            f"{node.name}-certs-renew", ctx, node,
            # A fresh cluster's certificates are new: renewal runs only when certificates.renew changes.
            update=node_script("certs-renew.sh", {
                "NODE_NAME": node.name,
                "RENEWAL": ctx.spec.certificates_renew,
                "LOCAL_API_SERVER": f"https://{node.internal_address}:{API_SERVER_PORT}",
                "STACKED_ETCD": ctx.spec.etcd_topology == "stacked",
            }, node, includes=("pem-bundle.sh",)),
            stdin=etcd.renewed_client if etcd is not None else None,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        self.register_outputs({})


def summarize_expiry(report: str) -> list[dict[str, str]]:
    """kubeadm's CertificateExpirationInfo JSON → [{name, expires, authority}] for the stack output.

    Field names of cmd/kubeadm/app/apis/output/v1alpha3/types.go@v1.36.4 (Certificate): the signing
    CA is `caName`; certificates kubeadm expects but does not find are listed with `missing: true`.
    """
    document = json.loads(report)
    entries = document.get("certificates", []) + document.get("certificateAuthorities", [])
    return [{"name": e.get("name", ""), "expires": e.get("expirationDate", ""), "authority": e.get("caName", "")}
            for e in entries if not e.get("missing")]


class CertificateExpiry(pulumi.ComponentResource):
    """`kubeadm certs check-expiration` on the first control plane, re-read after renewals and upgrades."""

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None,
                 etcd_expiry: pulumi.Output[list[dict[str, str]]] | None = None):
        """`etcd_expiry`: the external etcd members' entries, which kubeadm on a control plane skips."""
        super().__init__("kubeadm-cluster:index:CertificateExpiry", "certificate-expiry", None, opts)
        node = ctx.spec.first_control_plane
        params = {"RENEWAL": ctx.spec.certificates_renew, "K8S_VERSION": ctx.spec.kubernetes_version}
        self.command = node_command(
            "certificate-expiry", ctx, node,
            create=node_script("certs-expiry.sh", params, node),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.expiry = self.command.stdout.apply(summarize_expiry)
        if etcd_expiry is not None:
            self.expiry = pulumi.Output.all(self.expiry, etcd_expiry).apply(lambda lists: lists[0] + lists[1])
        self.register_outputs({"expiry": self.expiry})
