"""What an upgrade needs from the lab's kubelet stand-in, on the node of tests/test_kubelet_standin.py (the real
kubeadm init v1.36.4, containerd and control plane):

- it runs the containers of run-to-completion pods (restartPolicy Never or OnFailure), the one kind of bound pod it
  runs, because kubeadm upgrade's CreateJob health check waits for such a Job to complete
  (cmd/kubeadm/app/phases/upgrade/health.go@v1.36.4: pause with args -v, restartPolicy Never, 60 s);
- it serves `kubectl exec` into static pods (the program's pre-upgrade etcd snapshot, components/upgrade-preflight.sh,
  runs etcdctl in the etcd pod) through the real API server and the real kubectl."""

from __future__ import annotations

import json

# node: the module's fixture; pytestmark: its skip conditions (root, ip, nsenter, openssl).
from test_kubelet_standin import get, kubectl, node, pytestmark, wait_for  # noqa: F401
from tests.real_control_plane import INIT_CONFIG, NODE


def job(name: str, container: dict) -> str:
    """A Job shaped as kubeadm's CreateJob check makes it (health.go@v1.36.4 createJob)."""
    return json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "kube-system"},
                       "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 65, "template": {"spec": {
                           "restartPolicy": "Never",
                           "securityContext": {"runAsUser": 999, "runAsGroup": 999, "runAsNonRoot": True},
                           "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                           "containers": [{"name": name, **container}]}}}})


def finished(host, name: str) -> tuple[str, dict] | None:
    """The Job's finishing condition (Complete or Failed) and its pod, once there is one."""
    conditions = get(host, "job", "-n", "kube-system", name).get("status", {}).get("conditions", [])
    done = next((c["type"] for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"), None)
    pods = get(host, "pods", "-n", "kube-system", "-l", f"job-name={name}")["items"]
    return (done, pods[0]) if done and pods else None


def pause_image(host) -> str:
    """The pause image of the node's config (images.GetPauseImage, as createJob uses), imported by the fixture."""
    return next(i for i in host.sh(f"kubeadm config images list --config {INIT_CONFIG}").split() if "/pause:" in i)


def test_the_pause_job_of_kubeadm_upgrades_health_check_completes(node):
    pause = pause_image(node)
    node.sh("kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -",
            stdin=job("health-check", {"image": pause, "args": ["-v"]}))
    condition, pod = wait_for(node, lambda: finished(node, "health-check"), "the Job finished", 90)
    assert condition == "Complete"
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_a_container_that_cannot_start_fails_its_pod(node):
    """A missing binary: the runtime's start error, exit code 128; under restartPolicy Never the pod fails."""
    node.sh("kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -",
            stdin=job("absent", {"image": pause_image(node), "command": ["/absent"]}))
    condition, pod = wait_for(node, lambda: finished(node, "absent"), "the Job finished", 90)
    assert condition == "Failed"
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 128


def serving_certificate(host) -> None:
    """The kubelet's serving certificate, which exec's TLS needs: its CSRs approved as they come, as the program's
    approver does."""
    def written() -> bool:
        if host.run("test -s /var/lib/kubelet/pki/kubelet-server-current.pem").returncode == 0:
            return True
        pending = [c["metadata"]["name"] for c in get(host, "csr")["items"]
                   if c["spec"]["signerName"] == "kubernetes.io/kubelet-serving" and not c["status"].get("conditions")]
        if pending:
            kubectl(host, "certificate", "approve", *pending)
        return False
    wait_for(host, written, "the serving certificate written")


def test_kubectl_exec_runs_the_command_from_the_containers_image(node):
    """upgrade-preflight.sh's etcdctl in the etcd pod: the etcd image's etcdctl, its output back through the API server."""
    serving_certificate(node)
    out = kubectl(node, "exec", "-n", "kube-system", f"etcd-{NODE}", "--", "etcdctl", "version")
    assert out.splitlines()[0] == "etcdctl version: 3.6.8"
    assert node.run("command -v etcdctl").returncode != 0  # not the host's: it has none


def test_kubectl_exec_passes_the_commands_exit_code(node):
    serving_certificate(node)
    done = node.run(f"kubectl --kubeconfig /etc/kubernetes/admin.conf exec -n kube-system etcd-{NODE} -- "
                    "etcdctl --no-such-flag", timeout=60)
    assert done.returncode == 1
    assert "unknown flag: --no-such-flag" in done.stderr


def test_the_node_declares_the_websocket_feature_the_api_server_proxies_exec_for(node):
    assert "ExtendWebSocketsToKubelet" in get(node, "node", NODE)["status"]["declaredFeatures"]
