"""The lab's real HA (issue 12): `real-ha-kube-vip.yaml` — three stacked control planes and a worker behind the real
kube-vip, with the real kubeadm, etcd and control plane; the kubelet is the one stand-in. In order, on one bring-up:
the VIP's holder, removing a stacked control plane and adding it back, a second up, the fidelity checks of issue 11's
kube-vip items (old variants applied to the running cluster), the holder going away last. Every fact asserted is read
from the real programs: `ip -o addr`, the real API server (through the VIP with curl, or kubectl), the real etcdctl,
kube-vip's own log."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from hosts import in_ns
import vip
from scenario import lab_cluster
from tests.kube_vip_tools import PINNED_VERSION, REFERENCE_VERSION

pytestmark = pytest.mark.lab

VIP = "198.18.0.100"
CONTROL_PLANES = ("cp1", "cp2", "cp3")
# The program's kube-vip lease (components/loadbalancer.py vip_leaseduration): a new leader takes the lease at most
# this long after the old one stopped renewing it (client-go leaderelection), then adds the VIP and sends ARP.
LEASE_DURATION = 15
# Polling through the VIP from the worker, the moment kube-vip adds the address, the API server's TLS handshake.
MARGIN = 10
COMMON_SH = Path(__file__).resolve().parents[2] / "components" / "common.sh"


@pytest.fixture(scope="module")
def ha():
    if REFERENCE_VERSION != PINNED_VERSION:
        # tests/kube_vip_tools.py: v1.2.2 as a static pod never takes its lease (kube-vip #1658, fixed in v1.2.3).
        pytest.skip(f"the Go module proxy serves kube-vip {REFERENCE_VERSION}, not the pinned {PINNED_VERSION}, and "
                    f"{REFERENCE_VERSION} as a control-plane static pod never takes its lease (kube-vip #1658)")
    with lab_cluster("real-ha-kube-vip.yaml") as cluster:
        config = cluster.config()
        result = cluster.up(config)
        if result.error is not None:
            print(kube_vip_log(cluster, "cp1"))
        assert result.error is None, result.error
        yield cluster, config


def vip_holders(cluster, hosts=CONTROL_PLANES) -> dict[str, str]:
    return vip.holders(cluster, VIP, hosts)


def api_answers_through_vip(cluster) -> bool:
    return vip.api_answers(cluster, "w1", VIP, 6443)


def test_the_cluster_comes_up_with_every_node_in_its_role(ha):
    cluster, config = ha
    assert cluster.problems(config) == []


def test_exactly_one_control_plane_holds_the_vip_on_its_real_interface(ha):
    cluster, _ = ha
    holders = vip_holders(cluster)
    assert len(holders) == 1, holders
    assert list(holders.values()) == [cluster.lab.nic]


def test_the_lease_holder_is_the_vip_holder_by_node_name(ha):
    """vip_nodename (issue 11 item 12): kube-vip's lease names the node that holds the VIP."""
    cluster, _ = ha
    lease = cluster.kubectl("get lease -n kube-system plndr-cp-lock")
    assert [lease["spec"]["holderIdentity"]] == list(vip_holders(cluster))


def test_the_real_api_server_answers_through_the_vip(ha):
    cluster, _ = ha
    assert api_answers_through_vip(cluster)
    # And as a client: the worker's kubelet.conf points at the endpoint (the VIP).
    done = cluster.lab.ssh("w1", "sudo kubectl --kubeconfig /etc/kubernetes/kubelet.conf get --raw /version")
    assert yaml.safe_load(done.stdout)["gitVersion"] == "v1.36.4"


def spare_control_plane(cluster) -> str:
    """A control plane that neither holds the VIP nor is the first (the program refuses to remove the first)."""
    holder = next(iter(vip_holders(cluster)))
    return next(cp for cp in ("cp3", "cp2") if cp != holder)


def test_removing_a_stacked_control_plane_removes_its_etcd_member_and_node(ha):
    cluster, _ = ha
    leaving = spare_control_plane(cluster)
    result = cluster.up(cluster.config(without=(leaving,)))
    assert result.error is None, result.error
    assert cluster.etcd_member_names("cp1") == sorted(set(CONTROL_PLANES) - {leaving})
    assert leaving not in {n["metadata"]["name"] for n in cluster.kubectl("get nodes")["items"]}
    cluster.removed = leaving


def test_the_removed_control_plane_joins_again(ha):
    cluster, config = ha
    result = cluster.up(config)
    assert result.error is None, result.error
    assert cluster.problems(config) == []
    assert cluster.etcd_member_names("cp1") == list(CONTROL_PLANES)


def test_a_second_up_changes_nothing(ha):
    cluster, config = ha
    assert cluster.preview(config, "--expect-no-changes").returncode == 0


# --- Fidelity: issue 11's kube-vip items, the old variant applied to the running cluster -----------------------

def kube_vip_log(cluster, host: str) -> str:
    """kube-vip's container logs on HOST, as the kubelet stand-in writes them (/var/log/pods/NS_POD_HASH/NAME/N.log)."""
    return cluster.lab.ssh(host, "sudo sh -c 'cat /var/log/pods/kube-system_kube-vip-*/kube-vip/*.log'",
                           check=False).stdout


def kube_vip_with(cluster, host: str, change, message: str) -> str:
    """Write the program's kube-vip manifest on HOST changed by CHANGE (a function of its env list), wait until
    kube-vip's log shows MESSAGE once more than before, then write the program's manifest back. The log."""
    path = "/etc/kubernetes/manifests/kube-vip.yaml"
    ours = cluster.lab.ssh(host, f"sudo cat {path}").stdout
    before = kube_vip_log(cluster, host).count(message)
    pod = yaml.safe_load(ours)
    pod["spec"]["containers"][0]["env"] = change(pod["spec"]["containers"][0]["env"])
    try:
        cluster.lab.ssh(host, f"sudo tee {path} >/dev/null", stdin=yaml.safe_dump(pod))
        deadline = time.monotonic() + 90
        while kube_vip_log(cluster, host).count(message) <= before and time.monotonic() < deadline:
            time.sleep(3)
        return kube_vip_log(cluster, host)
    finally:
        cluster.lab.ssh(host, f"sudo tee {path} >/dev/null", stdin=ours)


def test_fidelity_item_1_vip_cidr_without_vip_subnet_stops_the_real_kube_vip(ha):
    """Issue 11 item 1, the old manifest: `vip_address` and `vip_cidr`, no `vip_subnet`. Written over the program's
    manifest on a control plane that does not hold the VIP, the real kube-vip stops at its config check
    (cmd/kube-vip.go@v1.2.3 CheckSubnetExists)."""
    cluster, _ = ha
    renamed = {"address": "vip_address", "vip_subnet": "vip_cidr"}
    message = "vip_subnet must be set if using vip_address instead of address environment variable"
    log = kube_vip_with(cluster, spare_control_plane(cluster),
                        lambda env: [{**e, "name": renamed.get(e["name"], e["name"])} for e in env], message)
    assert message in log


def test_fidelity_item_12_without_vip_nodename_kube_vip_falls_back_to_the_hostname(ha):
    """Issue 11 item 12, the old manifest without `vip_nodename`: the real kube-vip warns and takes the hostname as
    its lease identity (pkg/manager/manager.go@v1.2.3). The program's manifest gives it the node name: no warning."""
    cluster, _ = ha
    host = spare_control_plane(cluster)
    message = "Node name is missing from the config, fall back to hostname"
    assert message not in kube_vip_log(cluster, host)
    log = kube_vip_with(cluster, host, lambda env: [e for e in env if e["name"] != "vip_nodename"], message)
    assert message in log


OLD_VIP_INTERFACE = "ip -o route get {vip} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'"  # common.sh before f77050e


def test_fidelity_item_4_old_interface_detection_answers_lo_on_the_holder(ha):
    """Issue 11 item 4: on the node holding the VIP, the old detection (`ip -o route get VIP`) answers `lo`; the
    program's answers the real interface."""
    cluster, _ = ha
    holder = next(iter(vip_holders(cluster)))
    assert cluster.lab.ssh(holder, OLD_VIP_INTERFACE.format(vip=VIP)).stdout.strip() == "lo"
    ours = cluster.lab.ssh(holder, f"bash -c 'source /dev/stdin; vip_interface {VIP} \"\"'",
                           stdin=COMMON_SH.read_text()).stdout.strip()
    assert ours == cluster.lab.nic


# --- The holder goes away (last: the machine stays down) ------------------------------------------------------

def test_the_vip_moves_when_its_holder_goes_away_and_the_api_keeps_answering(ha):
    cluster, _ = ha
    holder = next(iter(vip_holders(cluster)))
    failover = vip.stop_holder_while_polling(cluster, "w1", VIP, 6443, holder, 75)
    assert failover.answered_before_and_after, failover
    print(f"VIP failover: holder {holder} stopped; longest outage through the VIP {failover.longest_outage:.1f} s "
          f"({failover.polls} polls)")
    assert failover.longest_outage < LEASE_DURATION + MARGIN
    remaining = [cp for cp in CONTROL_PLANES if cp != holder]
    holders = vip_holders(cluster, remaining)
    assert len(holders) == 1 and list(holders.values()) == [cluster.lab.nic], holders
    lease = cluster.kubectl("get lease -n kube-system plndr-cp-lock", host=remaining[0])
    assert [lease["spec"]["holderIdentity"]] == list(holders)
    # The machine restarts without kube-vip's address (the lab keeps its namespace, so the address is dropped here)
    # and runs its SSH server only: the secrets scan at the end reads it again.
    in_ns(cluster.lab.hosts[holder].namespace, "ip", "addr", "del", f"{VIP}/32", "dev", cluster.lab.nic)
    cluster.lab.start_host(holder)
