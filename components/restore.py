"""Disaster recovery (etcd.restore): etcd restored from a snapshot on every member, the chain etcd's
disaster-recovery guide and kubeadm's etcd procedures describe, as day-2 steps.

Every step is update-only: it runs when its script changes — a new etcd.restore.id — and never at
creation, so a new cluster or a node added later restores nothing. Each script is a no-op for an id it
already ran (a marker per step and id on the node), so a later change of a step's text runs nothing.

  check (every node) and snapshot (the first member: tools, the snapshot, `etcdutl snapshot status`,
  the restore into a staging directory), in parallel: they refuse before anything changes
  → stop (every node, once every check passed: API servers and etcd stopped, data directory kept)
  → first (the first member serves the snapshot as a one-member cluster)
  → per other member, one at a time: add (learner, on the first) → rejoin (on the member) → promote
  → verify (member list, health, new cluster ID) → apiserver (every control plane: the API server,
  then the controller manager and the scheduler)
"""

from __future__ import annotations

from typing import Mapping

import pulumi

from components.backup import TOOLS_DIR, etcdutl_sha256s
from components.config import API_SERVER_PORT, ClusterSpec, Node
from components.remote import Context, node_command, node_script

LIB = ("etcd-lib.sh", "etcd-restore-lib.sh")


def peer_url(node: Node) -> str:
    return f"https://{node.internal_address}:2380"


def client_url(node: Node) -> str:
    # kubeadm's --advertise-client-urls (phases/etcd/local.go@v1.36.4); external members listen only there.
    return f"https://{node.internal_address}:2379"


def etcd_members(spec: ClusterSpec) -> tuple[Node, ...]:
    return spec.control_planes if spec.etcd_topology == "stacked" else spec.etcd_nodes


def components_of(spec: ClusterSpec, node: Node) -> str:
    """The static pods the restore stops on `node`."""
    control_plane = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] if node.is_control_plane else []
    names = control_plane + (["etcd"] if node in etcd_members(spec) else [])
    return " ".join(names)


def restore_token(spec: ClusterSpec) -> str:
    """A new --initial-cluster-token per restore: with it, new member IDs and a new cluster ID."""
    return f"{spec.cluster_name}-restore-{spec.etcd_restore.id}"


class EtcdRestore(pulumi.ComponentResource):
    """The restore chain; `after` maps each node the restore touches to what must exist there first."""

    def __init__(self, ctx: Context, after: Mapping[str, pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:EtcdRestore", "etcd-restore", None, opts)
        spec = ctx.spec
        restore = spec.etcd_restore
        members = etcd_members(spec)
        first = members[0]
        nodes = [n for n in spec.nodes if n.is_control_plane or n in members]
        tools = {"TOOLS_DIR": TOOLS_DIR}

        def step(name: str, node: Node, template: str, params: dict, *depends_on: pulumi.Resource,
                 includes: tuple[str, ...] = ()):
            # Without a restore the parameters stay empty: adding or removing nodes then changes no step.
            values = params if restore.id else dict.fromkeys(params, "")
            script = node_script(template, {"RESTORE_ID": restore.id, **tools, **values}, node,
                                 includes=(*LIB, *includes))
            return node_command(name, ctx, node, update=script,
                                opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)))

        checks = [step(f"{node.name}-etcd-restore-check", node, "etcd-restore-check.sh", {
            "NODE_NAME": node.name, "COMPONENTS": components_of(spec, node)}, after[node.name]) for node in nodes]
        checks.append(step("etcd-restore-snapshot", first, "etcd-restore-snapshot.sh", {
            "NODE_NAME": first.name, "SNAPSHOT": restore.snapshot, "FETCH_COMMAND": restore.fetch_command,
            "INITIAL_CLUSTER": f"{first.name}={peer_url(first)}", "PEER_URL": peer_url(first),
            "TOKEN": restore_token(spec), "CLIENT_URL": client_url(first),
            "ETCDUTL_URL": spec.etcd_backup.etcdutl_url, "ETCDUTL_SHA256S": etcdutl_sha256s(spec.etcd_backup),
        }, after[first.name], includes=("etcd-tools.sh",)))
        # No node stops anything unless every node answered and every check passed.
        stops = [step(f"{node.name}-etcd-restore-stop", node, "etcd-restore-stop.sh", {
            "NODE_NAME": node.name, "COMPONENTS": components_of(spec, node), "MEMBER": node in members,
        }, *checks) for node in nodes]
        previous = step("etcd-restore-first", first, "etcd-restore-first.sh",
                        {"NODE_NAME": first.name, "CLIENT_URL": client_url(first)}, *stops)
        for i, member in enumerate(members[1:], start=2):
            about = {"MEMBER": member.name, "MEMBER_PEER_URL": peer_url(member), "CLIENT_URL": client_url(first)}
            added = step(f"{member.name}-etcd-restore-add", first, "etcd-restore-add.sh", about, previous)
            rejoined = step(f"{member.name}-etcd-restore-rejoin", member, "etcd-restore-rejoin.sh", {
                "NODE_NAME": member.name,
                "INITIAL_CLUSTER": ",".join(f"{m.name}={peer_url(m)}" for m in members[:i]),
            }, added)
            previous = step(f"{member.name}-etcd-restore-promote", first, "etcd-restore-promote.sh",
                            {**about, "MEMBER_CLIENT_URL": client_url(member)}, rejoined)
        self.verify = step("etcd-restore-verify", first, "etcd-restore-verify.sh", {
            "EXPECTED": "\n".join(f"{m.name} {peer_url(m)} {client_url(m)}" for m in members),
            "CLIENT_URL": client_url(first),
        }, previous)
        self.api_servers = [step(f"{node.name}-etcd-restore-apiserver", node, "etcd-restore-apiserver.sh", {
            "NODE_NAME": node.name, "LOCAL_API_SERVER": f"https://{node.internal_address}:{API_SERVER_PORT}",
        }, self.verify) for node in spec.control_planes]
        self.register_outputs({})
