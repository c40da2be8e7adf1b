"""A small web app deployed onto the cluster a kubeadm-cluster stack built."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

IMAGE = "nginxinc/nginx-unprivileged:1.27.4-alpine"
LABELS = {"app": "hello"}


def deploy(cluster_stack: str, host: str = "hello.example.com") -> dict[str, pulumi.Output]:
    cluster = pulumi.StackReference(cluster_stack)
    provider = k8s.Provider(
        "cluster",
        kubeconfig=pulumi.Output.secret(cluster.require_output("kubeconfig")),
        # The provider (and so every resource) is replaced only if the cluster itself changes.
        cluster_identifier=cluster.require_output("clusterName"),
    )
    on_cluster = pulumi.ResourceOptions(provider=provider)
    namespace = k8s.core.v1.Namespace("hello", metadata={"name": "hello"}, opts=on_cluster)
    name = namespace.metadata["name"]
    k8s.apps.v1.Deployment(
        "hello",
        metadata={"name": "hello", "namespace": name},
        spec={
            "replicas": 2,
            "selector": {"matchLabels": LABELS},
            "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [{
                "name": "web", "image": IMAGE, "ports": [{"containerPort": 8080}]}]}},
        },
        opts=on_cluster,
    )
    service = k8s.core.v1.Service(
        "hello",
        metadata={"name": "hello", "namespace": name},
        spec={"selector": LABELS, "ports": [{"port": 80, "targetPort": 8080}]},
        opts=on_cluster,
    )

    # Created outside any apply, so `pulumi preview` shows it. On a cluster without an ingress
    # controller (ingressClassName null) the Ingress has no class and nothing serves it.
    class_name = cluster.get_output("ingressClassName")
    k8s.networking.v1.Ingress(
        "hello",
        metadata={"name": "hello", "namespace": name},
        spec={"ingressClassName": class_name, "rules": [{"host": host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": service.metadata["name"], "port": {"number": 80}}}}]}}]},
        opts=on_cluster,
    )
    url = class_name.apply(lambda served: f"http://{host}/" if served else None)
    return {"url": url, "namespace": name}
