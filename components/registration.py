"""Cluster-side node management, run on the first control plane with its own admin.conf.

Creating it applies the node's labels and taints; deleting it drains the node, removes its stacked
etcd member (control planes) and deletes the Node object — before the node's own reset runs.
"""

from __future__ import annotations

import pulumi

from components.config import Node
from components.kubeadm_config import node_taints
from components.remote import Context, node_command, node_script
from components.upgrade import drain_params


class NodeRegistration(pulumi.ComponentResource):
    def __init__(self, ctx: Context, node: Node, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:NodeRegistration", node.name, None, opts)
        spec = ctx.spec
        first = spec.first_control_plane
        params = {
            "NODE_NAME": node.name,
            "LABELS": "\n".join(f"{key}={value}" for key, value in sorted(node.labels.items())),
            "TAINTS": "\n".join(t.kubectl() for t in node_taints(spec, node)),
        }
        remove = None
        if node != first:  # the init node goes last, with the whole cluster, through its reset
            remove = node_script("node-remove.sh", {
                **drain_params(spec),
                "NODE_NAME": node.name,
                "REMOVE_ETCD_MEMBER": node.is_control_plane and spec.etcd_topology == "stacked",
                "ETCD_POD": f"etcd-{first.name}",
            }, first, includes=("drain.sh",))
        self.command = node_command(
            f"{node.name}-register", ctx, first,
            create=node_script("node-register.sh", params, first),
            delete=remove,
            triggers=[first.address, node.address],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.register_outputs({})
