"""Day 2: the rolling upgrade, modelled as permanent resources that act only when the version changes.

They have no create: a new cluster or node passes through them without a connection. A change of
kubernetesVersion changes their update scripts, so `pulumi up` runs them in this order:
preflight + etcd snapshot (first control plane) → first control plane (`upgrade apply`) → other
control planes one at a time (`upgrade node`) → workers in batches of upgrade.maxUnavailableWorkers,
each worker drained (from the first control plane), upgraded, and uncordoned.
"""

from __future__ import annotations

import pulumi

from components.config import ClusterSpec, Node
from components.prepare import package_params
from components.remote import Context, node_command, node_script

UPGRADE_INCLUDES = ("packages.sh", "upgrade-lib.sh")
DRAIN_INCLUDES = ("drain.sh", "upgrade-lib.sh")


def drain_params(spec: ClusterSpec) -> dict[str, str | int]:
    """drain.sh's parameters: the upgrade.drain settings, for every drain (upgrades and node removal)."""
    return {
        "DRAIN_TIMEOUT": spec.drain.timeout,
        "DRAIN_GRACE_PERIOD": spec.drain.grace_period,
        "DRAIN_SKIP_WAIT_FOR_DELETE_TIMEOUT": spec.drain.skip_wait_for_delete_timeout,
    }


class UpgradePreflight(pulumi.ComponentResource):
    """Refuses unsupported version changes on the machine, then snapshots etcd."""

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:UpgradePreflight", "upgrade-preflight", None, opts)
        spec = ctx.spec
        first = spec.first_control_plane
        params = {
            "K8S_VERSION": spec.kubernetes_version,
            "STACKED_ETCD": spec.etcd_topology == "stacked",
            "ETCD_POD": f"etcd-{first.name}",
        }
        self.command = node_command(
            "upgrade-preflight", ctx, first,
            update=node_script("upgrade-preflight.sh", params, first, includes=UPGRADE_INCLUDES),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


class ControlPlaneUpgrade(pulumi.ComponentResource):
    def __init__(self, ctx: Context, node: Node, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:ControlPlaneUpgrade", node.name, None, opts)
        params = {
            **package_params(ctx.spec),
            **drain_params(ctx.spec),
            "NODE_NAME": node.name,
            "FIRST": node == ctx.spec.first_control_plane,
        }
        self.command = node_command(
            f"{node.name}-upgrade", ctx, node,
            update=node_script("upgrade-control-plane.sh", params, node,
                               includes=("drain.sh", *UPGRADE_INCLUDES)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


class WorkerUpgrade(pulumi.ComponentResource):
    """Drain (on the first control plane) → upgrade (on the worker) → uncordon (first control plane)."""

    def __init__(self, ctx: Context, node: Node, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:WorkerUpgrade", node.name, None, opts)
        spec = ctx.spec
        first = spec.first_control_plane
        target = {"NODE_NAME": node.name, "K8S_VERSION": spec.kubernetes_version}
        drain = node_command(
            f"{node.name}-upgrade-drain", ctx, first,
            update=node_script("upgrade-drain.sh", {**target, **drain_params(spec)}, first,
                               includes=DRAIN_INCLUDES),
            opts=pulumi.ResourceOptions(parent=self),
        )
        upgrade = node_command(
            f"{node.name}-upgrade", ctx, node,
            update=node_script("upgrade-worker.sh", {**package_params(spec), **target}, node,
                               includes=UPGRADE_INCLUDES),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[drain]),
        )
        self.uncordon = node_command(
            f"{node.name}-upgrade-uncordon", ctx, first,
            update=node_script("upgrade-uncordon.sh", target, first, includes=("upgrade-lib.sh",)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[upgrade]),
        )
        self.register_outputs({})
