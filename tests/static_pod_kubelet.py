"""A thin double of the kubelet's static pods, for tests that run real programs as static pods
(tests/test_etcd_restore_real.py). The kubelet cannot run on these machines (cgroup v1 only, see
README "What cannot run").

Run as PID 1 of a private PID namespace: it imitates what kubeadm's static pods rely on, nothing more —
- every `*.yaml` in /etc/kubernetes/manifests is a pod whose first container's `command` runs as a
  process of this machine (the kubelet's file source, pkg/kubelet/config/file.go@v1.36.4, reads the
  manifest directory; the container's process is a process of the host);
- a manifest that is removed stops its pod with SIGTERM, then SIGKILL after the grace period
  (pkg/kubelet/kuberuntime/kuberuntime_container.go killContainer@v1.36.4; terminationGracePeriodSeconds
  defaults to 30 s, pkg/apis/core/v1/defaults.go@v1.36.4); a changed manifest restarts the pod;
- a container that exits is started again (restartPolicy defaults to Always, pkg/apis/core/v1/defaults.go
  @v1.36.4, and kubeadm's manifests set none), here after 1 s, not the kubelet's back-off.
Not imitated: images (the command runs from this mount namespace's PATH), volumes (the host paths
are used as they are), probes, the API server mirror pods. Each container's output goes to
LOG_DIR/<manifest name>.log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

MANIFESTS = Path("/etc/kubernetes/manifests")
GRACE_SECONDS = 30


def command_of(text: str) -> list[str]:
    pod = yaml.safe_load(text)
    return [str(arg) for arg in pod["spec"]["containers"][0]["command"]]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(log_dir: Path) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    pods: dict[str, tuple[str, subprocess.Popen]] = {}
    while True:
        present = {}
        for manifest in sorted(MANIFESTS.glob("*.yaml")) if MANIFESTS.is_dir() else []:
            try:
                present[manifest.name] = manifest.read_text()
            except FileNotFoundError:
                continue
        for name, (text, process) in list(pods.items()):
            if present.get(name) != text:
                stop(process)
                del pods[name]
            elif process.poll() is not None:
                time.sleep(1)
                del pods[name]
        for name, text in present.items():
            if name not in pods:
                with open(log_dir / f"{name}.log", "ab") as log:
                    pods[name] = (text, subprocess.Popen(command_of(text), stdout=log, stderr=log))
        # PID 1 reaps what scripts run here leave behind.
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.2)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
