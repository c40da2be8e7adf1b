"""Phase 4: `kubeadm init` on the first control plane."""

from __future__ import annotations

import pulumi

from components.kubeadm_config import init_configuration
from components.remote import Context, node_command, node_script
from components.reset import reset_script, retry_params


class ControlPlaneInit(pulumi.ComponentResource):
    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        node = ctx.spec.first_control_plane
        super().__init__("kubeadm-cluster:index:ControlPlaneInit", node.name, None, opts)
        self.node = node
        self.command = node_command(
            f"{node.name}-init", ctx, node,
            create=node_script("init.sh", {"NODE_NAME": node.name, "KUBEADM_CONFIG": init_configuration(ctx.spec),
                                           **retry_params(ctx.spec, node)}, node, includes=("kubeadm-retry.sh",)),
            delete=reset_script(ctx.spec, node),
            triggers=[node.address],
            # A running cluster is changed by upgrades, never by a second init.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["create"], delete_before_replace=True),
        )
        self.register_outputs({})
