"""The vendored flannel manifest is the pinned upstream release."""

from __future__ import annotations

import json

from components.config import FLANNEL_VERSION
from components.flannel import MANIFEST, TYPED_KINDS, load_manifest


def images(documents):
    spec = next(d for d in documents if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    return [c["image"] for c in spec["initContainers"] + spec["containers"]]


def test_file_name_carries_the_pinned_version():
    assert MANIFEST.name == f"kube-flannel-{FLANNEL_VERSION}.yml"


def test_images_are_the_pinned_tags():
    assert sorted(set(images(load_manifest()))) == [
        "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3",
        f"ghcr.io/flannel-io/flannel:{FLANNEL_VERSION}",
    ]


def test_expected_objects_and_nothing_else():
    kinds = sorted((d["apiVersion"], d["kind"]) for d in load_manifest())
    assert kinds == sorted(TYPED_KINDS)


def test_upstream_defaults_are_untouched_in_the_file():
    documents = load_manifest()
    net_conf = json.loads(next(d for d in documents if d["kind"] == "ConfigMap")["data"]["net-conf.json"])
    assert net_conf == {"Network": "10.244.0.0/16", "EnableNFTables": False, "Backend": {"Type": "vxlan"}}
    namespace = next(d for d in documents if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
