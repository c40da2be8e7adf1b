"""The lab's kubelet stand-in (tests/lab/standins/kubelet.py) under the real kubeadm v1.36.4.

On a private host (tests/kubelet_host.py: the files of the lab's real-mode debs, the systemctl stand-in, the
real containerd v2.1.5 started through its unit with the lab's images imported — the real etcd v3.6.8 and
kube-apiserver, kube-controller-manager, kube-scheduler v1.36.4 where the upstream images have them) the real
`kubeadm init --config` of the program's rendered init config for a one-control-plane stack runs and starts the
kubelet with `systemctl restart kubelet` (its kubelet-start phase). Its preflight phase is skipped: its
SystemVerification reads the cgroup v2 controllers, which this machine's kernel binds to v1 (the lab's hosts
present them, tests/lab/hosts.py; the lab runs preflight).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from harness import script_param
from netns import HOST_ADDRESS, private_host
from tests.kubelet_host import INIT, VERSION, bridged, import_images, install_packages
from tests.real_control_plane import INIT_CONFIG, NODE, rendered_steps, stack_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nsenter")
                                or not shutil.which("openssl"),
                                reason="needs root, ip, nsenter and openssl for private namespaces and TLS")

STANDINS = Path(__file__).parent / "lab" / "standins"
ADMIN = "/etc/kubernetes/admin.conf"


def wait_for(host, check, what: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        journal = host.run("tail -n 25 /var/lib/kclab-node/units/kubelet.journal").stdout
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s\nthe kubelet's journal:\n{journal}"
        time.sleep(1)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("kubelet-standin")
    steps = rendered_steps(stack_config())
    with private_host("kckubelet", root / "host", INIT,
                      overlays=("/etc", "/var/lib", "/var/log", "/usr/bin", "/usr/lib/systemd", "/run")) as host:
        install_packages(host, root)
        host.sh(steps[f"{NODE}-control-plane-files"])
        host.sh(f"install -D -m 0600 /dev/stdin {INIT_CONFIG}", stdin=script_param(steps[f"{NODE}-init"], "KUBEADM_CONFIG"))
        host.sh("systemctl enable --now containerd", timeout=120)
        import_images(host, root, host.sh(f"kubeadm config images list --config {INIT_CONFIG}").split())
        init = host.run(f"kubeadm init --config {INIT_CONFIG} --skip-phases=preflight", timeout=900)
        host.init = init
        yield host


def kubectl(host, *args: str) -> str:
    return host.sh("kubectl --kubeconfig " + ADMIN + " " + " ".join(args), timeout=60)


def get(host, *args: str) -> dict:
    return json.loads(kubectl(host, "get", *args, "-o", "json"))


def test_kubeadm_init_completes_with_the_kubelet_started_by_systemctl(node):
    journal = node.run("tail -n 30 /var/lib/kclab-node/units/kubelet.journal").stdout
    assert node.init.returncode == 0, f"{node.init.stdout}\n{node.init.stderr}\nkubelet:\n{journal}"
    assert "Your Kubernetes control-plane has initialized successfully!" in node.init.stdout


def test_the_kubelet_serves_healthz(node):
    # kubeadm's kubelet-finalize phase restarted it as init ended: it may still be starting.
    answer = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:10248/healthz').read().decode())\""
    assert wait_for(node, lambda: node.run(answer).stdout.strip(), "healthz", 60) == "ok"


def test_the_node_is_ready_with_kubeadms_control_plane_label_and_taint(node):
    def ready():
        n = get(node, "node", NODE)
        return n if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) else None
    n = wait_for(node, ready, "node Ready")
    assert "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in n["spec"]["taints"]
    assert n["status"]["nodeInfo"]["kubeletVersion"] == f"v{VERSION}"
    assert {"type": "InternalIP", "address": HOST_ADDRESS} in n["status"]["addresses"]


def test_the_node_lease_is_renewed(node):
    first = get(node, "lease", "-n", "kube-node-lease", NODE)["spec"]["renewTime"]
    wait_for(node, lambda: get(node, "lease", "-n", "kube-node-lease", NODE)["spec"]["renewTime"] != first,
             "lease renewal", 40)


def mirror_pods(host) -> dict[str, dict]:
    pods = get(host, "pods", "-n", "kube-system")["items"]
    return {p["metadata"]["name"]: p for p in pods
            if "kubernetes.io/config.mirror" in p["metadata"].get("annotations", {})}


def test_static_pods_have_running_ready_mirror_pods_with_the_kubelets_annotations(node):
    names = {f"{c}-{NODE}" for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")}

    def all_ready():
        pods = mirror_pods(node)
        return pods if set(pods) == names and all(
            p["status"].get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            for p in pods.values()) else None
    for pod in wait_for(node, all_ready, "mirror pods Running and Ready").values():
        annotations = pod["metadata"]["annotations"]
        assert annotations["kubernetes.io/config.hash"] == annotations["kubernetes.io/config.mirror"]
        assert annotations["kubernetes.io/config.source"] == "file"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Node"


def test_a_control_plane_node_that_is_up_costs_its_kubelet_little_cpu(node):
    """The stand-in's loops run every second on every lab node; an openssl process per certificate check, a TLS
    context with the system's roots and a YAML parse per manifest each time cost this control-plane node 2.8 s of CPU
    in 20 s (14 % of a core; 0.27 s without them), most of the lab's CPU on two cores. Its own CPU and its finished
    children's, over 20 s once its static pods are up (the test above)."""
    def cpu_seconds() -> tuple[str, float]:
        pid = node.sh("cat /var/lib/kclab-node/units/kubelet.main").strip()
        utime, stime, cutime, cstime = node.sh(f"cat /proc/{pid}/stat").rsplit(")", 1)[1].split()[11:15]
        return pid, (int(utime) + int(stime) + int(cutime) + int(cstime)) / os.sysconf("SC_CLK_TCK")
    pid, before = cpu_seconds()
    time.sleep(20)
    same_pid, after = cpu_seconds()
    assert same_pid == pid, "the kubelet restarted while it was measured"
    assert after - before < 1.0, f"the kubelet took {after - before:.2f} s of CPU in 20 s"


def test_a_container_sees_its_image_as_root_with_its_volumes(node):
    # The program takes etcdctl from the running etcd's image through /proc/PID/root (components/etcd-tools.sh).
    root = f"/proc/{node.sh('pgrep -x etcd').split()[0]}/root"
    node.sh(f"test -x {root}/usr/local/bin/etcdctl && test -f {root}/etc/kubernetes/pki/etcd/ca.crt"
            f" && ! test -e {root}/usr/bin/kubeadm")


def test_the_client_certificate_is_rotated_into_the_kubelets_store_and_kubelet_conf_points_at_it(node):
    # kubeadm's kubelet-finalize phase (cmd/kubeadm/app/cmd/phases/init/kubeletfinalize.go@v1.36.4) rewrote it.
    conf = yaml.safe_load(node.sh("cat /etc/kubernetes/kubelet.conf"))
    assert conf["users"][0]["user"]["client-certificate"] == "/var/lib/kubelet/pki/kubelet-client-current.pem"
    csrs = wait_for(node, lambda: [c for c in get(node, "csr")["items"]
                             if c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
                             and c["spec"]["username"] == f"system:node:{NODE}" and c["status"].get("certificate")],
                    "the rotated client certificate")
    assert csrs[0]["metadata"]["name"].startswith("node-csr-")
    subject = node.sh("openssl x509 -noout -subject -nameopt RFC2253 -in /var/lib/kubelet/pki/kubelet-client-current.pem")
    assert subject.strip() == f"subject=CN=system:node:{NODE},O=system:nodes"


def test_the_kubelet_asks_for_a_serving_certificate_for_its_names_and_address(node):
    def serving():
        return [c for c in get(node, "csr")["items"] if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"]
    csr = wait_for(node, serving, "a kubelet-serving CSR")[0]
    assert csr["spec"]["username"] == f"system:node:{NODE}"
    request = node.sh("base64 -d | openssl req -noout -text", stdin=csr["spec"]["request"])
    assert f"DNS:{NODE}, IP Address:{HOST_ADDRESS}" in request
    # A kubelet restarted while its request waits asks again (with a new key), as the real one does: approve all.
    kubectl(node, "certificate", "approve", *(c["metadata"]["name"] for c in serving()))
    wait_for(node, lambda: node.run("test -s /var/lib/kubelet/pki/kubelet-server-current.pem").returncode == 0,
             "the serving certificate written")


def test_pods_bound_to_the_node_are_reported_running_and_ready(node):
    def coredns():
        pods = get(node, "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
        return pods if pods and all(p["status"].get("phase") == "Running" and p["status"].get("podIP")
                                    for p in pods) else None
    wait_for(node, coredns, "CoreDNS pods Running")


def test_a_deleted_pod_is_finished_off_by_the_kubelet(node):
    name = get(node, "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"][0]["metadata"]["name"]
    started = time.monotonic()
    kubectl(node, "delete", "pod", "-n", "kube-system", name, "--timeout=60s")
    assert time.monotonic() - started < 30  # well within its 30 s grace period: the kubelet deleted it with grace 0


def test_a_restarted_kubelet_keeps_the_running_static_pods(node):
    def etcd_starts() -> int:
        return node.sh("cat /var/lib/kclab-node/units/kubelet.journal").count("etcd/etcd: started")
    before, starts = node.sh("pgrep -x etcd").split(), etcd_starts()
    node.sh("systemctl restart kubelet")
    time.sleep(5)
    assert (node.sh("pgrep -x etcd").split(), etcd_starts()) == (before, starts)


def test_a_manifest_change_restarts_the_process_and_changes_the_mirror_pods_hash(node):
    old_pid = node.sh("pgrep -x kube-scheduler").split()
    old_hash = mirror_pods(node)[f"kube-scheduler-{NODE}"]["metadata"]["annotations"]["kubernetes.io/config.hash"]
    node.sh("sed -i 's/- --leader-elect=true/- --leader-elect=true\\n    - --v=2/' /etc/kubernetes/manifests/kube-scheduler.yaml")

    def new_hash():
        pod = mirror_pods(node).get(f"kube-scheduler-{NODE}")
        return pod and pod["metadata"]["annotations"]["kubernetes.io/config.hash"] != old_hash
    wait_for(node, new_hash, "a new config hash on the mirror pod")
    new_pid = wait_for(node, lambda: node.run("pgrep -x kube-scheduler").stdout.split(), "the new process")
    assert new_pid != old_pid
    assert "--v=2" in node.sh(f"tr '\\0' ' ' < /proc/{new_pid[0]}/cmdline")


def test_a_removed_manifest_stops_its_process(node):
    node.sh("mv /etc/kubernetes/manifests/kube-scheduler.yaml /etc/kubernetes/scheduler.moved")
    wait_for(node, lambda: node.run("pgrep -x kube-scheduler").returncode == 1, "kube-scheduler stopped", 60)
    wait_for(node, lambda: f"kube-scheduler-{NODE}" not in mirror_pods(node), "its mirror pod deleted", 60)


def test_a_static_pod_whose_image_cannot_be_pulled_waits_in_err_image_pull(node):
    node.sh("cat > /etc/kubernetes/manifests/absent.yaml", stdin=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "absent", "namespace": "kube-system"},
        "spec": {"hostNetwork": True, "containers": [{"name": "absent", "image": "registry.k8s.io/absent:v1",
                                                      "command": ["absent"]}]}}))

    def waiting():
        pod = mirror_pods(node).get(f"absent-{NODE}")
        statuses = (pod or {}).get("status", {}).get("containerStatuses", [])
        return statuses and statuses[0]["state"].get("waiting", {}).get("reason") == "ErrImagePull"
    wait_for(node, waiting, "the mirror pod waiting in ErrImagePull")
    node.sh("rm /etc/kubernetes/manifests/absent.yaml")


WORKER, WORKER_ADDRESS = "w1", "198.18.0.21"


def test_a_worker_joins_through_tls_bootstrap_with_a_real_csr(node, tmp_path):
    join = node.sh("kubeadm token create --print-join-command").split()
    token, ca_hash = join[join.index("--token") + 1], join[join.index("--discovery-token-ca-cert-hash") + 1]
    config = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
              "discovery": {"bootstrapToken": {"apiServerEndpoint": f"{HOST_ADDRESS}:6443", "token": token,
                                               "caCertHashes": [ca_hash]}},
              "nodeRegistration": {"name": WORKER, "criSocket": "unix:///run/containerd/containerd.sock",
                                   "kubeletExtraArgs": [{"name": "node-ip", "value": WORKER_ADDRESS}],
                                   "taints": [{"key": "example.com/dedicated", "value": "batch", "effect": "NoSchedule"}]}}
    with private_host("kcworker", tmp_path / "host", INIT,
                      overlays=("/etc", "/var/lib", "/var/log", "/usr/bin", "/usr/lib/systemd", "/run")) as worker, \
            bridged("kckubelet", "kcworker"):
        install_packages(worker, tmp_path)
        worker.sh(f"ip addr flush dev eth0 && ip addr add {WORKER_ADDRESS}/24 dev eth0")
        worker.sh("install -D -m 0600 /dev/stdin /etc/kubernetes/join.yaml", stdin=yaml.safe_dump(config))
        result = worker.run("kubeadm join --config /etc/kubernetes/join.yaml --skip-phases=preflight", timeout=600)
        journal = worker.run("tail -n 30 /var/lib/kclab-node/units/kubelet.journal").stdout
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\nkubelet:\n{journal}"
        conf = yaml.safe_load(worker.sh("cat /etc/kubernetes/kubelet.conf"))
        assert conf["users"][0]["user"]["client-certificate"] == "/var/lib/kubelet/pki/kubelet-client-current.pem"
        subject = worker.sh("openssl x509 -noout -subject -nameopt RFC2253 -in /var/lib/kubelet/pki/kubelet-client-current.pem")
        assert subject.strip() == f"subject=CN=system:node:{WORKER},O=system:nodes"
        bootstrap = [c for c in get(node, "csr")["items"]
                     if c["spec"]["username"] == f"system:bootstrap:{token.split('.')[0]}"]
        assert [c["spec"]["signerName"] for c in bootstrap] == ["kubernetes.io/kube-apiserver-client-kubelet"]
        wait_for(node, lambda: any(c["type"] == "Ready" and c["status"] == "True"
                                   for c in get(node, "node", WORKER)["status"]["conditions"]), "the worker Ready")
        # A worker's taints reach the kubelet as --register-with-taints (cmd/kubeadm/app/phases/kubelet/flags.go@v1.36.4).
        assert {"key": "example.com/dedicated", "value": "batch", "effect": "NoSchedule"} in \
            get(node, "node", WORKER)["spec"]["taints"]


def test_kubeadm_reset_ends_the_static_pods_processes(node):
    """The real `kubeadm reset` stops the kubelet and removes the containers (through CRI, here: the stand-in's
    containers end when reset cleans /var/lib/kubelet), so a join right after it (join.sh's retry of a half-finished
    join) finds the control plane's ports free: CRI's removal is done when reset returns, and a join checks its
    ports only after discovery (about 0.5 s in the lab). Last of the tests on NODE: it resets it."""
    control_plane = "etcd|kube-apiserver|kube-controller|kube-scheduler"  # comm: 15 characters
    assert node.sh(f"pgrep -x '{control_plane}'").split()
    listening = node.sh("kubeadm reset -f >/dev/null 2>&1; sleep 0.2; "
                        "ss -Hltn '( sport = :6443 or sport = :2379 or sport = :10257 or sport = :10259 )'", timeout=300)
    assert listening == ""
    wait_for(node, lambda: node.run(f"pgrep -x '{control_plane}'").returncode == 1, "no control-plane process", 30)


def kubelet_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    program = tmp_path / "kubelet"
    program.write_text((STANDINS / "kubelet.py").read_text().replace("@VERSION@", VERSION))
    program.chmod(0o755)
    return subprocess.run([str(program), *args], capture_output=True, text=True, timeout=30)


def test_version_answers_as_kubeadms_kubelet_version_check_reads_it(tmp_path):
    assert kubelet_run(tmp_path, "--version").stdout == f"Kubernetes v{VERSION}\n"


def test_the_kubelet_exits_while_its_config_file_is_missing(tmp_path):
    result = kubelet_run(tmp_path, f"--config={tmp_path}/absent.yaml", "--kubeconfig=/etc/kubernetes/kubelet.conf")
    assert result.returncode == 1 and "failed to load kubelet config file" in result.stderr


def test_an_unknown_flag_is_refused(tmp_path):
    result = kubelet_run(tmp_path, "--version", "--no-such-flag=1")
    assert result.returncode == 1 and "unknown flag: --no-such-flag=1" in result.stderr
