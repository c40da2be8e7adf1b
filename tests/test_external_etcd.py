"""Issue 4: external etcd — CA made once, members formed, healthy before init, keys only as secrets.
Issue 14: the CA key stays on the first member; the others' certificates are signed there."""

from __future__ import annotations

import pytest
import yaml

from harness import CLIENT_KEY_PEM, ETCD_MEMBER_KEY_MARK, base_config, inner_script, run_program, script_param

CONFIG = base_config(etcd={"topology": "external"}, nodes=base_config()["nodes"] + [
    {"name": f"etcd{i}", "address": f"10.0.0.3{i}", "roles": ["etcd"]} for i in (1, 2, 3)])


@pytest.fixture(scope="module")
def run():
    return run_program(CONFIG)


def test_ca_is_made_on_the_first_etcd_node(run):
    assert run.named("etcd-ca").host == "10.0.0.31"
    assert set(run.named("etcd-ca").additional_secret_outputs) >= {"stdout", "stderr"}


def test_members_get_the_ca_certificate_never_its_key(run):
    for i in (1, 2, 3):
        member = run.named(f"etcd{i}-etcd-member")
        assert member.host == f"10.0.0.3{i}"
        assert "# file: ca.crt\n" in member.plain("stdin")
        assert "# file: ca.key" not in member.plain("stdin")
        assert run.depends_on(f"etcd{i}-etcd-member", "etcd-ca")


def test_the_first_member_signs_the_others_certificates(run):
    assert "etcd1-etcd-member-certs" not in run.names()  # it signs its own where it runs
    for i in (2, 3):
        signing = run.named(f"etcd{i}-etcd-member-certs")
        assert signing.host == "10.0.0.31"
        assert set(signing.additional_secret_outputs) >= {"stdout", "stderr"}
        script = inner_script(signing.plain("create"))
        docs = {d["kind"]: d for d in yaml.safe_load_all(script_param(script, "KUBEADM_CONFIG"))}
        # the member's own names, into a scratch certificatesDir on the first member
        assert docs["ClusterConfiguration"]["etcd"]["local"]["serverCertSANs"] == [f"10.0.0.3{i}"]
        assert docs["ClusterConfiguration"]["certificatesDir"] == script_param(script, "CERT_DIR")
        assert docs["InitConfiguration"]["nodeRegistration"]["name"] == f"etcd{i}"


def test_other_members_get_their_signed_certificates_as_secret_stdin(run):
    for i in (2, 3):
        member = run.named(f"etcd{i}-etcd-member")
        assert member.is_secret("stdin")
        for name in ("server", "peer", "healthcheck-client"):
            assert f"# file: {name}.crt\n" in member.plain("stdin") and f"# file: {name}.key\n" in member.plain("stdin")
        assert f"serverKeyetcd{i}{ETCD_MEMBER_KEY_MARK}" in member.plain("stdin")


def test_member_configuration_lists_the_whole_initial_cluster(run):
    script = inner_script(run.named("etcd2-etcd-member").plain("create"))
    docs = {d["kind"]: d for d in yaml.safe_load_all(script_param(script, "KUBEADM_CONFIG"))}
    args = {a["name"]: a["value"] for a in docs["ClusterConfiguration"]["etcd"]["local"]["extraArgs"]}
    assert args["initial-cluster"] == ("etcd1=https://10.0.0.31:2380,etcd2=https://10.0.0.32:2380,"
                                       "etcd3=https://10.0.0.33:2380")
    assert args["listen-client-urls"] == "https://10.0.0.32:2379"
    assert docs["ClusterConfiguration"]["etcd"]["local"]["serverCertSANs"] == ["10.0.0.32"]


def test_init_waits_for_a_healthy_etcd(run):
    assert run.depends_on("etcd-health", "etcd1-etcd-member")
    assert run.depends_on("etcd-health", "etcd3-etcd-member")
    assert run.depends_on("cp1-init", "etcd-health")
    assert run.depends_on("cp1-init", "cp1-etcd-client-certs")


def test_control_plane_gets_ca_cert_and_client_pair_but_never_the_ca_key(run):
    client = run.named("cp1-etcd-client-certs")
    assert client.host == "10.0.0.11"
    assert client.is_secret("stdin")
    bundle = client.plain("stdin")
    assert "# file: ca.crt" in bundle and "# file: apiserver-etcd-client.key" in bundle
    assert CLIENT_KEY_PEM.splitlines()[1] in bundle
    assert "# file: ca.key" not in bundle


def test_etcd_nodes_are_not_kubernetes_nodes(run):
    names = run.names()
    assert "etcd1-join" not in names and "etcd1-register" not in names
    assert "etcd1-prepare" in names
