"""Phase 3: an external etcd cluster on the nodes with role etcd (kubeadm's HA etcd procedure).

The etcd CA is made once on the first etcd node and its key never leaves it (kubeadm's HA etcd guide
removes ca.key from the other members' bundles): the first member signs every other member's
certificates, at creation and at each renewal, and they reach that member as secret stdin. Control
planes get the CA certificate and the API server's client pair (secret stdin). The first control
plane's init waits for every member to report healthy. kubeadm neither renews nor reports these
certificates with external etcd, so certificates.renew renews them here, member by member, and each
member reports their expiry.
"""

from __future__ import annotations

from typing import Mapping

import pulumi

from components.certificates import summarize_expiry
from components.config import ClusterSpec, Node
from components.kubeadm_config import CRI_SOCKETS, KUBEADM_API
from components.remote import Context, last_json_document, node_command, node_script
from components.reset import reset_script
from components.scripts import yaml_documents

ETCD_CA_KEYS = ("caCert", "clientCert", "clientKey")
# What etcd-member-certs.sh prints, by the file name under /etc/kubernetes/pki/etcd.
MEMBER_CERT_FILES = {"server.crt": "serverCert", "server.key": "serverKey", "peer.crt": "peerCert",
                     "peer.key": "peerKey", "healthcheck-client.crt": "healthcheckClientCert",
                     "healthcheck-client.key": "healthcheckClientKey"}
# On the first member: the scratch certificatesDir where another member's certificates are signed.
MEMBER_CERTS_DIR = "/etc/kubernetes/kubeadm-cluster/etcd-member-pki"
RENEWED_CLIENT_KEYS = ("clientCert", "clientKey")
KUBELET_DROPIN = (
    "[Service]\n"
    "ExecStart=\n"
    "ExecStart=/usr/bin/kubelet --config=/etc/systemd/system/kubelet.service.d/kubelet.conf\n"
    "Restart=always\n"
)


def initial_cluster(spec: ClusterSpec) -> str:
    return ",".join(f"{n.name}=https://{n.internal_address}:2380" for n in spec.etcd_nodes)


def member_configuration(spec: ClusterSpec, node: Node, certificates_dir: str | None = None) -> str:
    ip = node.internal_address
    args = {
        "initial-cluster": initial_cluster(spec),
        "initial-cluster-state": "new",
        "name": node.name,
        "listen-peer-urls": f"https://{ip}:2380",
        "listen-client-urls": f"https://{ip}:2379",
        "advertise-client-urls": f"https://{ip}:2379",
        "initial-advertise-peer-urls": f"https://{ip}:2380",
    }
    return yaml_documents(
        {
            "apiVersion": KUBEADM_API,
            "kind": "InitConfiguration",
            "nodeRegistration": {"name": node.name, "criSocket": CRI_SOCKETS[spec.container_runtime]},
            "localAPIEndpoint": {"advertiseAddress": ip},
        },
        {
            "apiVersion": KUBEADM_API,
            "kind": "ClusterConfiguration",
            "clusterName": spec.cluster_name,
            "kubernetesVersion": f"v{spec.kubernetes_version}",
            "imageRepository": spec.image_repository,
            **({"certificatesDir": certificates_dir} if certificates_dir else {}),
            "etcd": {"local": {
                "serverCertSANs": [ip],
                "peerCertSANs": [ip],
                "extraArgs": [{"name": k, "value": v} for k, v in args.items()],
            }},
        },
    )


def kubelet_configuration(spec: ClusterSpec) -> str:
    """The standalone kubelet of an etcd host: static pods only, no API server."""
    return yaml_documents({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "systemd",
        "address": "127.0.0.1",
        "containerRuntimeEndpoint": CRI_SOCKETS[spec.container_runtime],
        "staticPodPath": "/etc/kubernetes/manifests",
    })


def renewed_client_bundle(stdout: str) -> str:
    """The first member's renewal output as the pem bundle certs-renew.sh installs; empty before any renewal."""
    if not (stdout or "").strip():
        return ""
    pair = last_json_document(stdout, RENEWED_CLIENT_KEYS, "etcd certificate renewal")
    return pem_bundle({"apiserver-etcd-client.crt": pair["clientCert"], "apiserver-etcd-client.key": pair["clientKey"]})


def etcd_expiry(report: str, member: str, first: bool) -> list[dict[str, str]]:
    """A member's `kubeadm certs check-expiration` entries for the certificateExpiry output: its own
    certificates named with the member; the etcd CA and the API servers' client pair (both the same
    on every member that holds them) from the first member only."""
    shared = ("etcd-ca", "apiserver-etcd-client")
    return [
        {**entry, "name": entry["name"] if entry["name"] in shared else f"{entry['name']} ({member})"}
        for entry in summarize_expiry(report)
        if first or entry["name"] not in shared
    ]


def member_certificates(stdout: str, node: str) -> str:
    """etcd-member-certs.sh's output as the pem bundle etcd-member.sh and etcd-certs-renew.sh install."""
    signed = last_json_document(stdout, tuple(MEMBER_CERT_FILES.values()), f"etcd certificates of {node}")
    return pem_bundle({name: signed[key] for name, key in MEMBER_CERT_FILES.items()})


def pem_bundle(files: Mapping[str, str]) -> str:
    """The stdin format pem-bundle.sh unpacks: '# file: NAME' then the PEM."""
    return "".join(f"# file: {name}\n{content.rstrip()}\n" for name, content in files.items())


class ExternalEtcd(pulumi.ComponentResource):
    def __init__(self, ctx: Context, prepared: Mapping[str, pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:ExternalEtcd", "etcd", None, opts)
        spec = ctx.spec
        first = spec.etcd_nodes[0]
        ca = node_command(
            "etcd-ca", ctx, first,
            create=node_script("etcd-ca.sh", {"KUBEADM_CONFIG": member_configuration(spec, first)}, first,
                               includes=("etcd-lib.sh",)),
            secret_stdout=True,
            triggers=[first.address],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[prepared[first.name]], ignore_changes=["create"]),
        )
        material = pulumi.Output.secret(ca.stdout.apply(lambda out: last_json_document(out, ETCD_CA_KEYS, "etcd CA")))
        ca_certificate = material.apply(lambda m: pem_bundle({"ca.crt": m["caCert"]}))
        signed = {node.name: self._signed(ctx, node, ca) for node in spec.etcd_nodes[1:]}
        members = [
            node_command(
                f"{node.name}-etcd-member", ctx, node,
                create=node_script("etcd-member.sh", {
                    "NODE_NAME": node.name,
                    "FIRST": node == first,
                    "KUBEADM_CONFIG": member_configuration(spec, node),
                    "KUBELET_CONFIG": kubelet_configuration(spec),
                    "KUBELET_DROPIN": KUBELET_DROPIN,
                }, node, includes=("pem-bundle.sh",)),
                stdin=pulumi.Output.secret(pulumi.Output.concat(ca_certificate, signed[node.name]))
                if node != first else ca_certificate,
                delete=reset_script(spec, node, "etcd-reset.sh"),
                triggers=[node.address],
                # kubeadm does not upgrade or reconfigure external etcd members.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[prepared[node.name], ca],
                                            ignore_changes=["create", "stdin"], delete_before_replace=True),
            )
            for node in spec.etcd_nodes
        ]
        endpoints = "\n".join(f"https://{n.internal_address}:2379" for n in spec.etcd_nodes)
        healthy = node_command(
            "etcd-health", ctx, first,
            create=node_script("etcd-health.sh", {"ENDPOINTS": endpoints}, first, includes=("etcd-lib.sh",)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=members),
        )
        client_bundle = pulumi.Output.secret(material.apply(lambda m: pem_bundle({
            "ca.crt": m["caCert"],
            "apiserver-etcd-client.crt": m["clientCert"],
            "apiserver-etcd-client.key": m["clientKey"],
        })))
        # Only the init node needs them: joining control planes download them with the other
        # control-plane certificates (kubeadm upload-certs includes the external etcd client pair).
        cp = spec.first_control_plane
        self.client_certificates = node_command(
            f"{cp.name}-etcd-client-certs", ctx, cp,
            create=node_script("etcd-client-certs.sh", {}, cp, includes=("pem-bundle.sh",)),
            stdin=client_bundle,
            triggers=[cp.address],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[healthy, prepared[cp.name]]),
        )
        self._renewal(ctx, endpoints, members, signed)
        self.register_outputs({})

    def _signed(self, ctx: Context, node: Node, ca: pulumi.Resource) -> pulumi.Output[str]:
        """`node`'s certificates signed on the first member, as a pem bundle; signed again (new keys)
        whenever certificates.renew changes."""
        spec = ctx.spec
        first = spec.etcd_nodes[0]
        cert_dir = f"{MEMBER_CERTS_DIR}/{node.name}"
        command = node_command(
            f"{node.name}-etcd-member-certs", ctx, first,
            create=node_script("etcd-member-certs.sh", {
                "NODE_NAME": node.name,
                "KUBEADM_CONFIG": member_configuration(spec, node, cert_dir),
                "CERT_DIR": cert_dir,
                "RENEWAL": spec.certificates_renew,
            }, first, includes=("etcd-lib.sh",)),
            secret_stdout=True,
            triggers=[node.address, first.address],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ca]),
        )
        return pulumi.Output.secret(command.stdout.apply(lambda out: member_certificates(out, node.name)))

    def _renewal(self, ctx: Context, endpoints: str, members: list[pulumi.Resource],
                 signed: Mapping[str, pulumi.Output[str]]) -> None:
        """certificates.renew for the members, one at a time, each waiting for a healthy cluster, the
        others with their certificates signed again on the first (`signed`); the first also renews
        the API servers' client pair (`renewed_client`, a pem bundle for the control planes' renewal,
        empty until a renewal ran). Then every member reports its expiry."""
        spec = ctx.spec
        first = spec.etcd_nodes[0]
        previous: list[pulumi.Resource] = members
        renewals = []
        for node in spec.etcd_nodes:
            params = {"NODE_NAME": node.name, "RENEWAL": spec.certificates_renew, "FIRST": node == first,
                      "LOCAL_ENDPOINT": f"https://{node.internal_address}:2379", "ENDPOINTS": endpoints}
            renewal = node_command(
                f"{node.name}-etcd-certs-renew", ctx, node,
                # Like the control planes' renewal: update-only, so a new cluster passes through it.
                update=node_script("etcd-certs-renew.sh", params, node, includes=("etcd-lib.sh", "pem-bundle.sh")),
                stdin=signed.get(node.name),
                secret_stdout=node == first,
                opts=pulumi.ResourceOptions(parent=self, depends_on=previous),
            )
            renewals.append(renewal)
            previous = [renewal]
        self.renewed: pulumi.Resource = previous[0]
        self.renewed_client: pulumi.Output[str] = pulumi.Output.secret(renewals[0].stdout.apply(renewed_client_bundle))
        params = {"RENEWAL": spec.certificates_renew, "K8S_VERSION": spec.kubernetes_version}
        reports = [
            node_command(
                f"{node.name}-etcd-certs-expiry", ctx, node,
                create=node_script("etcd-certs-expiry.sh", params, node),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.renewed]),
            ).stdout.apply(lambda out, name=node.name, first=node == first: etcd_expiry(out, name, first))
            for node in spec.etcd_nodes
        ]
        self.expiry: pulumi.Output[list[dict[str, str]]] = pulumi.Output.all(*reports).apply(
            lambda lists: [entry for entries in lists for entry in entries])
