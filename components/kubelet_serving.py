"""Kubelet serving certificates from approved CSRs (security.kubeletServingCertificates).

kubeadm writes `serverTLSBootstrap: true` into the kubelet configuration (kubeadm_config.py), so each
kubelet asks for its serving certificate with a CSR (signer kubernetes.io/kubelet-serving) instead of
signing one itself, and kube-apiserver verifies it against the cluster CA
(--kubelet-certificate-authority, control_plane_files.py). Nothing in Kubernetes approves those CSRs
(kube-controller-manager auto-approves only kubelet client CSRs); this phase installs an approver on the
first control plane that checks each one against the node's configured name and address.
"""

from __future__ import annotations

import pulumi

from components.config import ClusterSpec
from components.remote import Context, node_command, node_script
from components.scripts import render

UNIT = "kubeadm-cluster-kubelet-serving"


def approver_script(spec: ClusterSpec) -> str:
    """kubelet-serving-approve.sh with the names and addresses the CSRs may ask for."""
    return render("kubelet-serving-approve.sh", {
        "NODES": "\n".join(f"{node.name} {node.internal_address}" for node in spec.cluster_nodes)})


SERVICE_UNIT = (
    "[Unit]\n"
    "Description=kubeadm-cluster: approve the kubelets' serving-certificate CSRs of the configured nodes\n"
    "\n"
    "[Service]\n"
    "Type=oneshot\n"
    "ExecStart=/usr/bin/bash /usr/local/lib/kubeadm-cluster/kubelet-serving-approve\n"
)

TIMER_UNIT = (
    "[Unit]\n"
    "Description=kubeadm-cluster: approve kubelet serving-certificate CSRs every minute\n"
    "\n"
    "[Timer]\n"
    "OnCalendar=minutely\n"
    "AccuracySec=5s\n"
    "\n"
    "[Install]\n"
    "WantedBy=timers.target\n"
)


class KubeletServingApprover(pulumi.ComponentResource):
    """The approver on the first control plane, once its API server runs; updated when nodes change."""

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:KubeletServingApprover", "kubelet-serving", None, opts)
        first = ctx.spec.first_control_plane
        setup = node_script("kubelet-serving-setup.sh", {
            "APPROVER": approver_script(ctx.spec), "SERVICE_UNIT": SERVICE_UNIT, "TIMER_UNIT": TIMER_UNIT}, first)
        self.command = node_command(
            "kubelet-serving-approver", ctx, first,
            create=setup, update=setup,
            delete=node_script("kubelet-serving-remove.sh", {}, first),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
