"""The lab's real external etcd (issue 12), `real-external-etcd.yaml`: three etcd members the program sets up with the
real kubeadm and etcd (kubeadm's HA etcd guide), two control planes joined against them. Every fact is read from the
real programs: etcdctl's member list on the members, the API server (kubectl with admin.conf), the engine's preview.
Then certificates.renew on the same cluster: the first member renews its certificates with the real kubeadm (it holds
the etcd CA's key), signs the others' again, and each member installs its own, one member at a time (issue 14);
the members serve the renewed certificates (openssl s_client against the real etcd) and both API servers still reach
them."""

from __future__ import annotations

import time

import pytest

from scenario import lab_cluster

pytestmark = pytest.mark.lab

MEMBERS = ["etcd1", "etcd2", "etcd3"]
ADDRESSES = {"etcd1": "198.18.0.31", "etcd2": "198.18.0.32", "etcd3": "198.18.0.33"}
ENDPOINTS = ",".join(f"https://{address}:2379" for address in ADDRESSES.values())
RENEWAL = "2026-11-26"


@pytest.fixture(scope="module")
def external():
    with lab_cluster("real-external-etcd.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        if result.error is not None:
            for host in MEMBERS:
                print(f"--- {host}:", cluster.lab.ssh(host, "sudo sh -c 'tail -n 20 /var/lib/kclab-node/units/kubelet.journal; "
                                                      "tail -n 30 /var/log/pods/kube-system_etcd-*/etcd/*.log'",
                                                check=False).stdout)
        assert result.error is None, result.error
        yield cluster, config


def test_every_node_is_in_its_role(external):
    cluster, config = external
    assert cluster.problems(config) == []


def test_the_three_members_form_one_etcd_cluster(external):
    cluster, _ = external
    for host in MEMBERS:
        assert cluster.etcd_member_names(host) == MEMBERS


def test_both_control_planes_run_api_servers_on_the_external_members_and_no_etcd(external):
    """Issue 11 item 2: the second control plane's join (certificates uploaded) works with external etcd."""
    cluster, _ = external
    servers = {p["spec"]["nodeName"]: p["spec"]["containers"][0]["command"]
               for p in cluster.kubectl("get pods -n kube-system -l component=kube-apiserver")["items"]}
    assert sorted(servers) == ["cp1", "cp2"]
    assert all(f"--etcd-servers={ENDPOINTS}" in command for command in servers.values()), servers
    assert cluster.kubectl("get pods -n kube-system -l component=etcd")["items"] == []


def test_members_certificates_are_signed_on_the_first_for_their_own_address(external):
    """kubeadm's HA etcd guide as the program follows it (issue 14): the etcd CA's key stays on etcd1, which signs
    the other members' certificates for their addresses; the control planes get the API server's client pair only."""
    cluster, _ = external
    for member in ("etcd2", "etcd3"):
        verified = cluster.lab.ssh(member, "cd /etc/kubernetes/pki/etcd && sudo openssl verify -CAfile ca.crt "
                                   "server.crt peer.crt healthcheck-client.crt && sudo openssl x509 -noout "
                                   "-ext subjectAltName -in server.crt").stdout
        assert verified.count(": OK") == 3 and ADDRESSES[member] in verified, (member, verified)
    for control_plane in ("cp1", "cp2"):
        assert cluster.lab.ssh(control_plane, "sudo test -s /etc/kubernetes/pki/apiserver-etcd-client.key",
                               check=False).returncode == 0, control_plane
        assert cluster.lab.ssh(control_plane, "sudo test -e /etc/kubernetes/pki/etcd/ca.key",
                               check=False).returncode != 0, control_plane


def test_a_second_up_changes_nothing(external):
    cluster, config = external
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


def read(cluster, host: str, path: str) -> str:
    return cluster.lab.ssh(host, f"sudo cat {path}").stdout


def served_serial(cluster, member: str) -> str:
    """The serial of the certificate the real etcd on MEMBER serves to a client of the API server's (from cp1)."""
    pair = "-cert /etc/kubernetes/pki/apiserver-etcd-client.crt -key /etc/kubernetes/pki/apiserver-etcd-client.key"
    script = (f"sudo openssl s_client -connect {ADDRESSES[member]}:2379 {pair} </dev/null 2>/dev/null"
              " | openssl x509 -noout -serial")
    return cluster.lab.ssh("cp1", script).stdout.strip()


def file_serial(cluster, host: str, path: str) -> str:
    return cluster.lab.ssh(host, f"sudo openssl x509 -noout -serial -in {path}").stdout.strip()


@pytest.fixture(scope="module")
def renewed(external):
    cluster, config = external
    before = {"served": {m: served_serial(cluster, m) for m in MEMBERS},
              "client": read(cluster, "cp2", "/etc/kubernetes/pki/apiserver-etcd-client.crt")}
    time.sleep(1)  # notBefore has a resolution of one second
    result = cluster.up(dict(config, certificates={"renew": RENEWAL}))
    assert result.error is None, result.error
    return cluster, before, result


def test_each_member_serves_a_renewed_certificate_its_ca_verifies(renewed):
    cluster, before, _ = renewed
    for member in MEMBERS:
        served = served_serial(cluster, member)
        assert served != before["served"][member], member
        assert served == file_serial(cluster, member, "/etc/kubernetes/pki/etcd/server.crt"), member
        verified = cluster.lab.ssh(member, "sudo openssl verify -CAfile /etc/kubernetes/pki/etcd/ca.crt "
                                           "/etc/kubernetes/pki/etcd/server.crt /etc/kubernetes/pki/etcd/peer.crt")
        assert verified.stdout.count(": OK") == 2, (member, verified.stdout)


def test_only_the_first_member_holds_the_etcd_cas_key(renewed):
    cluster = renewed[0]
    held = {m: cluster.lab.ssh(m, "sudo test -e /etc/kubernetes/pki/etcd/ca.key", check=False).returncode == 0
            for m in MEMBERS}
    assert held == {"etcd1": True, "etcd2": False, "etcd3": False}


def test_members_renew_one_at_a_time_each_after_its_certificates_were_signed(renewed):
    result = renewed[2]
    members = [result.step(f"{m}-etcd-certs-renew") for m in MEMBERS]
    assert all(step.action == "update" and not step.failed for step in members)
    assert members[0].ended < members[1].started and members[1].ended < members[2].started
    assert all(result.step(f"{m}-etcd-member-certs").ended < members[i].started for i, m in enumerate(MEMBERS) if i)


def test_both_control_planes_get_the_renewed_etcd_client_certificate_and_still_reach_etcd(renewed):
    cluster, before, result = renewed
    renewed_client = read(cluster, "etcd1", "/etc/kubernetes/pki/apiserver-etcd-client.crt")
    assert renewed_client != before["client"]
    for control_plane, address in (("cp1", "198.18.0.11"), ("cp2", "198.18.0.12")):
        assert read(cluster, control_plane, "/etc/kubernetes/pki/apiserver-etcd-client.crt") == renewed_client
        # Each node's own API server, through its etcd readiness check.
        ready = cluster.lab.ssh(control_plane, "sudo kubectl --kubeconfig /etc/kubernetes/admin.conf "
                                               f"--server https://{address}:6443 get --raw '/readyz/etcd'")
        assert ready.stdout.strip() == "ok", control_plane
    assert {"cp1-certs-renew", "cp2-certs-renew"} <= set(result.ran("update"))


def test_the_expiry_output_names_each_members_certificates(renewed):
    cluster = renewed[0]
    names = {e["name"] for e in cluster.stack.outputs()["certificateExpiry"]}
    assert {"etcd-server (etcd1)", "etcd-peer (etcd3)", "apiserver-etcd-client", "etcd-ca"} <= names
