"""Phase 7: the exported credentials, made on the first control plane, as secret kubeconfigs.

Not admin.conf: its client certificate (user kubernetes-admin, group kubeadm:cluster-admins, one year;
cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go@v1.36.4) can be revoked only by rotating the cluster CA
or by deleting the kubeadm:cluster-admins binding, which breaks every node's admin.conf. A client
certificate of our own (`kubeadm kubeconfig user --client-name --org`) in a group we bind would be no
better: kube-apiserver has no certificate revocation, so after unbinding it still authenticates (with
the system:authenticated permissions) until it expires, and any later binding of that name revives it.

Each exported credential is a ServiceAccount with a token Secret it alone owns, bound to cluster-admin
(the `kubeconfig` output) or to a built-in role in some namespaces (`scopedKubeconfigs`). Deleting the
Secret or the ServiceAccount makes the API server refuse the token at authentication
(pkg/serviceaccount/legacy.go@v1.36.4, --service-account-lookup on by default); deleting the
ServiceAccount also voids any short-lived token minted for it. The legacy-token cleaner leaves such
tokens alone: it only considers Secrets the ServiceAccount lists in `secrets`
(pkg/controller/serviceaccount/legacy_serviceaccount_token_cleaner.go@v1.36.4), which ours never do.
A TokenRequest token would expire between two `pulumi up`s and leave consumers with a dead output.

A credential's name carries a hash of kubeconfig.revision, certificates.renew and its own settings:
changing any of them makes a new ServiceAccount and token, and the step deletes the old ones once the
new token is issued — revocation and rotation are config changes `pulumi preview` shows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import pulumi
import yaml

from components.config import CREDENTIALS_NAMESPACE, ClusterSpec
from components.remote import Context, last_json_document, node_command, node_script
from components.scripts import yaml_documents

CREDENTIAL_LABEL = "kubeadm-cluster.io/credential"


@dataclass(frozen=True)
class Credential:
    name: str  # admin, or a kubeconfig.scoped[] name
    id: str  # <name>-<hash>: the ServiceAccount; its Secret is <id>-token, its bindings kubeadm-cluster:<id>
    role: str  # the ClusterRole bound
    namespaces: tuple[str, ...] = ()  # where it is bound; none: cluster-wide


def credentials(spec: ClusterSpec) -> tuple[Credential, ...]:
    """The admin credential first, then the scoped ones in config order."""
    def ident(name: str, *settings: str) -> str:
        parts = (spec.kubeconfig.revision, spec.certificates_renew, name, *settings)
        return f"{name}-{hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:8]}"
    admin = Credential("admin", ident("admin"), "cluster-admin")
    return (admin, *(Credential(s.name, ident(s.name, s.revision, s.role, *s.namespaces), s.role, s.namespaces)
                     for s in spec.kubeconfig.scoped))


def manifest(spec: ClusterSpec) -> str:
    """The objects of every credential, in the order they must exist (a token Secret whose
    ServiceAccount is missing is deleted by the token controller)."""
    labels = {"app.kubernetes.io/managed-by": "kubeadm-cluster"}
    wanted = [CREDENTIALS_NAMESPACE, *dict.fromkeys(ns for c in credentials(spec) for ns in c.namespaces)]
    documents: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in wanted]
    documents[0]["metadata"]["labels"] = labels
    for credential in credentials(spec):
        meta = {"namespace": CREDENTIALS_NAMESPACE, "labels": {**labels, CREDENTIAL_LABEL: credential.id}}
        subject = {"kind": "ServiceAccount", "name": credential.id, "namespace": CREDENTIALS_NAMESPACE}
        role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": credential.role}
        documents.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": credential.id, **meta}})
        documents.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                          "metadata": {"name": f"{credential.id}-token", **meta,
                                       "annotations": {"kubernetes.io/service-account.name": credential.id}}})
        binding = {"name": f"kubeadm-cluster:{credential.id}", "labels": meta["labels"]}
        if not credential.namespaces:
            documents.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                              "metadata": binding, "roleRef": role_ref, "subjects": [subject]})
        for namespace in credential.namespaces:
            documents.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                              "metadata": {**binding, "namespace": namespace},
                              "roleRef": role_ref, "subjects": [subject]})
    return yaml_documents(*documents)


def grants(spec: ClusterSpec) -> str:
    """"ID NAMESPACE" per line: where each credential's role is bound (the credentials' namespace for a
    cluster-wide binding), which kubeconfig.sh waits for the API server to authorize."""
    return "\n".join(f"{c.id} {namespace}" for c in credentials(spec)
                     for namespace in c.namespaces or (CREDENTIALS_NAMESPACE,))


def kubeconfig_for(spec: ClusterSpec, credential: Credential, ca: str, token: str) -> str:
    """A kubeconfig for `credential` at https://<controlPlane.endpoint>; scoped ones default to their first namespace."""
    context = {"cluster": spec.cluster_name, "user": credential.id}
    if credential.namespaces:
        context["namespace"] = credential.namespaces[0]
    name = f"{credential.id}@{spec.cluster_name}"
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": spec.cluster_name, "cluster": {"certificate-authority-data": ca,
                                                             "server": f"https://{spec.control_plane.endpoint}"}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "users": [{"name": credential.id, "user": {"token": token}}],
    }, sort_keys=False)


def kubeconfigs(spec: ClusterSpec, stdout: str) -> dict[str, str]:
    """Every credential's kubeconfig by name, from the step's JSON document."""
    document = last_json_document(stdout, ["ca", "tokens"], "kubeconfig")
    wanted = credentials(spec)
    missing = [c.id for c in wanted if not document["tokens"].get(c.id)]
    if missing:
        raise ValueError(f"the kubeconfig document lacks the token of {', '.join(missing)}")
    return {c.name: kubeconfig_for(spec, c, document["ca"], base64.b64decode(document["tokens"][c.id]).decode())
            for c in wanted}


class Kubeconfig(pulumi.ComponentResource):
    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        spec, node = ctx.spec, ctx.spec.first_control_plane
        super().__init__("kubeadm-cluster:index:Kubeconfig", "kubeconfig", None, opts)
        ids = [c.id for c in credentials(spec)]
        self.command = node_command(
            "kubeconfig", ctx, node,
            create=node_script("kubeconfig.sh", {"MANIFEST": manifest(spec), "CREDENTIAL_IDS": "\n".join(ids),
                                                 "GRANTS": grants(spec),
                                                 "NAMESPACE": CREDENTIALS_NAMESPACE, "LABEL": CREDENTIAL_LABEL,
                                                 "CA_CERT": "/etc/kubernetes/pki/ca.crt"}, node),
            secret_stdout=True,
            # A new credential (revision, renewal, scoped settings) is a replacement: the step makes the new
            # ones, then deletes the old. So is an etcd restore (`opts` waits for its API servers): the
            # snapshot's ServiceAccounts are those of its time, without a credential issued later and with
            # those revoked since. Nothing else re-runs it: an upgrade leaves the tokens valid.
            triggers=[node.address, *ids, *([f"etcd.restore.id={restore}"] if (restore := spec.etcd_restore.id) else [])],
            opts=pulumi.ResourceOptions(parent=self),
        )
        all_kubeconfigs = self.command.stdout.apply(lambda text: kubeconfigs(spec, text))
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(all_kubeconfigs["admin"])
        self.scoped: pulumi.Output[dict[str, str]] = pulumi.Output.secret(all_kubeconfigs.apply(
            lambda configs: {name: text for name, text in configs.items() if name != "admin"}))
        self.register_outputs({"kubeconfig": self.kubeconfig, "scopedKubeconfigs": self.scoped})
