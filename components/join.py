"""Phase 6: `kubeadm join` of the other control planes (one at a time) and the workers (in parallel)."""

from __future__ import annotations

import pulumi

from components.config import Node
from components.kubeadm_config import join_configuration
from components.remote import Context, node_command, node_script
from components.reset import reset_script, retry_params


class NodeJoin(pulumi.ComponentResource):
    def __init__(self, ctx: Context, node: Node, material: pulumi.Output[dict[str, str]],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:NodeJoin", node.name, None, opts)
        role = "control-plane" if node.is_control_plane else "worker"
        join_config = pulumi.Output.secret(material.apply(lambda m: join_configuration(ctx.spec, node, m)))
        self.command = node_command(
            f"{node.name}-join", ctx, node,
            create=node_script("join.sh", {"NODE_NAME": node.name, "ROLE": role, **retry_params(ctx.spec, node)}, node,
                               includes=("kubeadm-retry.sh",)),
            stdin=join_config,
            delete=reset_script(ctx.spec, node),
            triggers=[node.address],
            # Fresh join material for a new node must not re-run the joins of the others.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["create", "stdin"], delete_before_replace=True),
        )
        self.register_outputs({})
