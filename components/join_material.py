"""Phase 5: join material minted on the first control plane, secret, fresh for every new joiner, and
deleted again once the joins are done."""

from __future__ import annotations

import pulumi

from components.config import Node
from components.kubeadm_config import INIT_TOKEN_DESCRIPTION, upload_certs_configuration
from components.remote import Context, last_json_document, node_command, node_script

JOIN_MATERIAL_KEYS = ("token", "caCertHash")
CERTIFICATE_UPLOAD_KEYS = ("certificateKey",)
TOKEN_DESCRIPTION = "kubeadm-cluster join material"
# As long as the certificates uploaded with it live (DefaultCertTokenDuration, 2 h, fixed by kubeadm:
# constants/constants.go, phases/copycerts/copycerts.go @v1.36.4): control planes join one at a time, each
# within kubeadm's own time limits (v1beta4 timeouts: discovery 5m, tlsBootstrap 5m, health checks 4m
# each), in an upgrading run after the control planes before them; a control-plane join later than 2 h
# fails on the certificates whatever the token's TTL. Workers join in parallel within the same window.
TOKEN_TTL = "2h0m0s"
# The owner of kubeadm-certs that kubeadm creates with each upload (copycerts.go createShortLivedBootstrapToken).
KUBEADM_CERTS_TOKEN_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"


class JoinMaterial(pulumi.ComponentResource):
    """A bootstrap token and the CA hash; with control planes among the joiners, a certificate-key upload.

    The token is replaced (so re-minted) whenever the set of joining nodes or joinMaterialEpoch
    changes, the upload only when the set of joining control planes does: a run that adds only workers
    uploads no certificates. Joins of nodes already in the cluster ignore the new material.
    """

    def __init__(self, ctx: Context, joining: list[Node], opts: pulumi.ResourceOptions | None = None):
        node = ctx.spec.first_control_plane
        super().__init__("kubeadm-cluster:index:JoinMaterial", "join-material", None, opts)
        self.triggers = [node.address, ",".join(sorted(n.name for n in joining)), ctx.spec.join_material_epoch]
        self.command = node_command(
            "join-material", ctx, node,
            create=node_script("join-material.sh", {"TOKEN_TTL": TOKEN_TTL, "TOKEN_DESCRIPTION": TOKEN_DESCRIPTION},
                               node),
            secret_stdout=True,
            triggers=self.triggers,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.material: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            self.command.stdout.apply(lambda out: last_json_document(out, JOIN_MATERIAL_KEYS, "join-material")))
        self.commands: list[pulumi.Resource] = [self.command]
        self.control_plane_material = self.material
        control_planes = sorted(n.name for n in joining if n.is_control_plane)
        if control_planes:
            upload = node_command(
                "certificate-upload", ctx, node,
                create=node_script("certificate-upload.sh",
                                   {"UPLOAD_CERTS_CONFIG": upload_certs_configuration(ctx.spec)}, node),
                secret_stdout=True,
                triggers=[node.address, ",".join(control_planes), ctx.spec.join_material_epoch],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.commands.append(upload)
            key = upload.stdout.apply(lambda out: last_json_document(out, CERTIFICATE_UPLOAD_KEYS, "certificate-upload"))
            self.control_plane_material = pulumi.Output.secret(
                pulumi.Output.all(self.material, key).apply(lambda parts: {**parts[0], **parts[1]}))
        self.register_outputs({"material": self.material})


class JoinCleanup(pulumi.ComponentResource):
    """Deletes the join set's token, init's token and the uploaded certificates once every join is done.

    Replaced together with the join material (same triggers), so it runs in the run that re-mints,
    after that run's joins, and never in a run that joins nobody.
    """

    def __init__(self, ctx: Context, material: JoinMaterial, opts: pulumi.ResourceOptions | None = None):
        node = ctx.spec.first_control_plane
        super().__init__("kubeadm-cluster:index:JoinCleanup", "join-cleanup", None, opts)
        descriptions = "\n".join((TOKEN_DESCRIPTION, INIT_TOKEN_DESCRIPTION, KUBEADM_CERTS_TOKEN_DESCRIPTION))
        self.command = node_command(
            "join-cleanup", ctx, node,
            create=node_script("join-cleanup.sh", {"TOKEN_DESCRIPTIONS": descriptions}, node),
            triggers=material.triggers,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
