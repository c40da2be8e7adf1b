"""The phase runner: wires the phases into the dependency graph of SPEC §4 and §6.

1. every node prepared, in parallel
2. HA endpoint static pods (haproxy-keepalived on every control plane, kube-vip on the init node)
3. external etcd formed and healthy (if chosen); the API server's hardening files on every control plane
4. kubeadm init on the first control plane; then the upgrade preflight and the first control
   plane's upgrade step (update-only: they run when kubernetesVersion changes)
5. join material minted (certificates uploaded only for joining control planes)
6. control-plane joins one at a time, worker joins in parallel (in a run that also upgrades, after the
   control planes' upgrade steps before them); node registrations (labels, taints,
   and the drain/delete path), then the approver of the kubelets' serving-certificate CSRs; the other
   control planes' upgrade steps one at a time, then the workers' in batches of upgrade.maxUnavailableWorkers
7. certificate renewal chain, the exported credentials (kubeconfigs), certificate expiry report
"""

from __future__ import annotations

import pulumi

from components.backup import EtcdBackups
from components.certificates import CertificateExpiry, CertificateRenewal
from components.config import ClusterSpec, Node
from components.control_plane_files import ControlPlaneFiles
from components.control_plane_init import ControlPlaneInit
from components.etcd import ExternalEtcd
from components.join import NodeJoin
from components.join_material import JoinCleanup, JoinMaterial
from components.kubeconfig import Kubeconfig
from components.kubelet_serving import KubeletServingApprover
from components.loadbalancer import ControlPlaneEndpoint, endpoint_stages
from components.prepare import NodePreparation
from components.registration import NodeRegistration
from components.restore import EtcdRestore
from components.remote import Context
from components.upgrade import ControlPlaneUpgrade, UpgradePreflight, WorkerUpgrade


def batches(nodes: tuple[Node, ...], size: int) -> list[tuple[Node, ...]]:
    return [nodes[i:i + size] for i in range(0, len(nodes), size)]


def check_first_control_plane(recorded: str, first: str) -> None:
    """Refuse a config whose first control plane is not the node that ran kubeadm init."""
    if recorded != first:
        raise pulumi.RunError(
            f"{recorded} initialized this cluster, but {first} is now the first control plane in 'nodes': a control "
            f"plane that joined cannot run kubeadm init, and a new machine would start a second cluster. The first "
            f"control plane cannot be removed or moved behind another control plane: restore {recorded} as the first "
            f"control-plane entry. Nothing was changed.")


class KubeadmCluster(pulumi.ComponentResource):
    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:KubeadmCluster", name, None, opts)
        spec: ClusterSpec = ctx.spec
        first = spec.first_control_plane

        # The node that ran kubeadm init, as recorded when the cluster was created: a Stash keeps the value it
        # was created with (pkg/resource/deploy/builtins.go@v3.274.1), and ignore_changes keeps it "same".
        # Every step waits for the check, so a plan that makes another node first fails at preview (where the
        # stash's old output is known) and runs nothing: init.sh's own refusal came after steps that do not
        # wait for init. (A replacement would keep the ignored input too: a cluster whose init never finished
        # is destroyed and brought up again to move its first control plane.)
        initialized_by = pulumi.Stash("first-control-plane", input=first.name,
                                      opts=pulumi.ResourceOptions(parent=self, ignore_changes=["input"]))
        gate = initialized_by.output.apply(lambda recorded: check_first_control_plane(recorded, first.name))

        def child(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[gate, *depends_on])

        prepared = {node.name: NodePreparation(ctx, node, child()).command for node in spec.nodes}
        etcd = ExternalEtcd(ctx, prepared, child()) if spec.etcd_topology == "external" else None
        first_files = ControlPlaneFiles(ctx, first, None, child(prepared[first.name]))
        hardened = {first.name: first_files.command}
        for node in spec.control_planes[1:]:
            hardened[node.name] = ControlPlaneFiles(ctx, node, first_files.encryption_configuration,
                                                    child(prepared[node.name], first_files.command)).command

        # Adding or removing a control plane changes every haproxy's backends and restarts it: one
        # control plane at a time, each waiting for the previous one's haproxy to answer again.
        rolling: list[pulumi.Resource] = []

        def endpoint(node: Node, stage: str, after: pulumi.Resource) -> list[pulumi.Resource]:
            if stage not in endpoint_stages(spec, node):
                return []
            command = ControlPlaneEndpoint(ctx, node, stage, child(after, *rolling)).command
            if spec.control_plane.load_balancer.type == "haproxy-keepalived":
                rolling[:] = [command]
            return [command]

        def before_kubeadm(node: Node) -> list[pulumi.Resource]:
            """What must be in place on a control plane before its kubeadm init/join."""
            needs = [prepared[node.name], hardened[node.name], *endpoint(node, "before-kubeadm", prepared[node.name])]
            return needs + ([etcd.client_certificates] if etcd is not None else [])

        init = ControlPlaneInit(ctx, child(*before_kubeadm(first))).command
        ready = [init, *endpoint(first, "after-kubeadm", init)]

        preflight = UpgradePreflight(ctx, child(init)).command
        upgraded = ControlPlaneUpgrade(ctx, first, child(preflight, *ready)).command
        material = JoinMaterial(ctx, [n for n in spec.cluster_nodes if n != first], child(upgraded))

        joins: dict[str, pulumi.Resource] = {first.name: init}
        previous_join: list[pulumi.Resource] = material.commands
        previous_upgrade = upgraded
        renewal = first_renewal = CertificateRenewal(ctx, first, child(upgraded), etcd).command
        for node in spec.control_planes[1:]:
            # A node added in a run that also upgrades joins at kubernetesVersion once the control planes
            # before it run it: its own upgrade step is new too and, having no create, never runs. (A joining
            # control plane's kubelet talks to its own API server: kubeadm phases/join/kubelet.go@v1.36.3.)
            join = NodeJoin(ctx, node, material.control_plane_material,
                            child(*previous_join, previous_upgrade, *before_kubeadm(node))).command
            joins[node.name] = join
            previous_join = [join]
            endpoint(node, "after-kubeadm", join)
            # Not after its own join, so workers, which wait for these steps, still join in parallel with
            # the control planes; a node not joined yet has nothing to upgrade.
            previous_upgrade = ControlPlaneUpgrade(ctx, node, child(previous_upgrade)).command
            renewal = CertificateRenewal(ctx, node, child(renewal, join), etcd).command
        for node in spec.workers:
            # Workers join once every control plane runs kubernetesVersion: a kubelet never newer than an API server.
            joins[node.name] = NodeJoin(ctx, node, material.material,
                                        child(material.command, previous_upgrade, prepared[node.name])).command

        # The set's credentials go once every join of the set is done (the init token is never used).
        JoinCleanup(ctx, material, child(*material.commands, *(joins[n.name] for n in spec.cluster_nodes if n != first)))

        registrations = {node.name: NodeRegistration(ctx, node, child(joins[node.name], *ready)).command
                         for node in spec.cluster_nodes}
        if spec.security.kubelet_serving_certificates:
            # After the joins: a kubelet asks once its node is registered, and these are approved before `up` ends.
            KubeletServingApprover(ctx, child(*ready, *registrations.values()))

        previous_batch: list[pulumi.Resource] = [previous_upgrade]
        for batch in batches(spec.workers, spec.max_unavailable_workers):
            previous_batch = [WorkerUpgrade(ctx, node, child(*previous_batch, registrations[node.name])).uncordon
                              for node in batch]

        # Scheduled etcd snapshots on every member, once etcd runs there.
        members = ([(n, joins[n.name]) for n in spec.control_planes] if etcd is None
                   else [(n, etcd.client_certificates) for n in spec.etcd_nodes])
        self.etcd_backup = EtcdBackups(ctx, members, child()).status if spec.etcd_backup.enabled else None
        # Disaster recovery from a snapshot: its steps run only when etcd.restore.id changes.
        restore_after = {**{n.name: joins[n.name] for n in spec.control_planes}, **{n.name: r for n, r in members}}
        restore = EtcdRestore(ctx, restore_after, child())

        # With a restore set, the credentials are issued again after it (kubeconfig.py); without, they wait for no join.
        credentials = Kubeconfig(ctx, child(first_renewal, *(restore.api_servers if spec.etcd_restore.id else ())))
        self.kubeconfig, self.scoped_kubeconfigs = credentials.kubeconfig, credentials.scoped
        self.certificate_expiry = CertificateExpiry(ctx, child(renewal, previous_upgrade),
                                                    etcd.expiry if etcd is not None else None).expiry
        self.register_outputs({"kubeconfig": self.kubeconfig, "certificateExpiry": self.certificate_expiry})
