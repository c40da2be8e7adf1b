"""Phase 5: join material minted on the first control plane, secret, fresh for every new joiner."""

from __future__ import annotations

import pulumi

from components.kubeadm_config import upload_certs_configuration
from components.remote import Context, last_json_document, node_command, node_script

JOIN_MATERIAL_KEYS = ("token", "caCertHash", "certificateKey")


class JoinMaterial(pulumi.ComponentResource):
    """A bootstrap token, a certificate-key upload and the CA hash.

    Replaced (so re-minted) whenever the set of joining nodes or joinMaterialEpoch changes; joins of
    nodes already in the cluster ignore the new material.
    """

    def __init__(self, ctx: Context, joining: list[str], opts: pulumi.ResourceOptions | None = None):
        node = ctx.spec.first_control_plane
        super().__init__("kubeadm-cluster:index:JoinMaterial", "join-material", None, opts)
        self.command = node_command(
            "join-material", ctx, node,
            create=node_script("join-material.sh", {"UPLOAD_CERTS_CONFIG": upload_certs_configuration(ctx.spec)}, node),
            secret_stdout=True,
            triggers=[node.address, ",".join(sorted(joining)), ctx.spec.join_material_epoch],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.material: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            self.command.stdout.apply(lambda out: last_json_document(out, JOIN_MATERIAL_KEYS, "join-material")))
        self.register_outputs({"material": self.material})
