"""A lab cluster: the lab's hosts plus a stack of this repo's program run by the real Pulumi CLI.

Shared by the scenarios and `run`. The CLI runs in the lab's client namespace, where the real
pulumi-command provider opens its SSH connections.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from components.config import parse_spec
from hosts import CLIENT_NS, Lab
from pulumi_cli import COMMAND, Result, Stack, plaintext


def print_line(line: str) -> None:
    """One write per line."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def target_version(config: dict[str, Any]) -> str:
    """The version the program deploys for `config`: its own default and normalisation (v1.36.4 → 1.36.4)."""
    return parse_spec(config).kubernetes_version


class LabCluster:
    """Hosts for every node of `config_path`; `up(config)` runs `pulumi up` for any subset of them.

    `state`: the directory of the stack's file backend (default: inside the lab's work directory,
    removed with the hosts); `stack`: the stack's name there.
    """

    def __init__(self, config_path: Path, log=print_line, state: Path | None = None, stack: str = "lab",
                 passphrase: str | None = None):
        self.lab = Lab.from_file(config_path)
        version = target_version(self.lab.config)  # a config the program rejects gets no hosts (ConfigError)
        # The config's own version too, so any stack config runs (the default versions serve upgrades).
        self.lab.versions = tuple(dict.fromkeys([*self.lab.versions, version]))
        self.log = log
        self.state = state
        self.stack_name = stack
        self.passphrase = passphrase
        self.stack: Stack | None = None

    def __enter__(self) -> "LabCluster":
        try:
            self.lab.up()
            self.stack = Stack(self.stack_name, self.state or self.lab.work / "pulumi",
                               prefix=["ip", "netns", "exec", CLIENT_NS], passphrase=self.passphrase, log=self.log,
                               env=self._trust_lab_ca())
            if self.stack.exists_in_state():
                self.stack.remove()  # an earlier run's stack: its machines were removed when that run ended
            self.stack.init()
        except BaseException:
            self.lab.down()  # __exit__ does not run when __enter__ fails
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lab.down()

    def _trust_lab_ca(self) -> dict[str, str]:
        """A real lab's CLI environment: its providers (the kubernetes provider's Helm fetching charts from the
        lab's chart repository) trust the lab CA as a machine of an air-gapped site trusts its own CA, through
        SSL_CERT_FILE (Go's crypto/x509 root_unix.go reads it instead of the system bundle): the system bundle
        plus the lab CA, no TLS check weakened."""
        if not self.lab.registry:
            return {}
        bundle = self.lab.work / "ca-bundle.crt"
        bundle.write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text() + self.lab.registry.ca.read_text())
        return {"SSL_CERT_FILE": str(bundle)}

    def config(self, without: tuple[str, ...] = (), addons: bool | None = None, **changes: Any) -> dict[str, Any]:
        """The lab's derived stack config, minus some nodes, with some keys changed. Add-ons (flannel, the
        ingress controller, Helm releases) are kept in a real lab, which has a real API server and a chart
        repository for them; a stand-in lab takes them out (see without_addons). `addons` overrides that."""
        config = copy.deepcopy(self.lab.derived_config())
        if not (self.lab.real if addons is None else addons):
            config = without_addons(config)[0]
        config["nodes"] = [n for n in config["nodes"] if n["name"] not in without]
        config.update(changes)
        return config

    def up(self, config: dict[str, Any], *extra: str, on_event=None) -> Result:
        assert self.stack is not None
        return self.stack.up(config, *extra, on_event=on_event)

    def preview(self, config: dict[str, Any] | None = None, *extra: str) -> Result:
        assert self.stack is not None
        return self.stack.preview(config, *extra)

    def destroy(self) -> Result:
        assert self.stack is not None
        return self.stack.destroy()

    def members(self) -> dict[str, dict[str, Any]]:
        return self.lab.journal().get("nodes", {})

    def kubectl(self, args: str, host: str | None = None) -> Any:
        """The real kubectl's JSON output for ARGS, run with admin.conf on a control plane (default: the first)."""
        host = host or next(n["name"] for n in self.lab.config["nodes"] if "control-plane" in n["roles"])
        done = self.lab.ssh(host, f"sudo kubectl --kubeconfig /etc/kubernetes/admin.conf {args} -o json")
        return json.loads(done.stdout)

    def real_members(self) -> dict[str, dict[str, Any]]:
        """The cluster's Nodes as the real API server has them, shaped like the stand-in journal's members:
        role from kubeadm's control-plane label, the kubelet's reported version, the API server's image tag."""
        images = {pod["spec"]["nodeName"]: pod["spec"]["containers"][0]["image"]
                  for pod in self.kubectl("get pods -n kube-system -l component=kube-apiserver")["items"]}
        return {node["metadata"]["name"]: {
            "role": "control-plane" if "node-role.kubernetes.io/control-plane" in node["metadata"]["labels"]
            else "worker",
            "kubelet": node["status"]["nodeInfo"]["kubeletVersion"].removeprefix("v"),
            "controlPlane": images[node["metadata"]["name"]].rsplit(":", 1)[1].removeprefix("v")
            if node["metadata"]["name"] in images else None,
        } for node in self.kubectl("get nodes")["items"]}

    def kubeconfig_works(self, kubeconfig: str, host: str) -> bool:
        """Whether the real kube-apiserver accepts KUBECONFIG (a `kubeconfig` stack output of now or of then),
        used by the real kubectl on HOST."""
        script = 'f=$(mktemp); trap \'rm -f "$f"\' EXIT; cat >"$f"; kubectl --kubeconfig "$f" get --raw /api >/dev/null'
        return self.lab.ssh(host, script, stdin=kubeconfig, check=False).returncode == 0

    def exported_kubeconfig(self) -> str:
        assert self.stack is not None
        return self.stack.outputs(show_secrets=True)["kubeconfig"]

    def step_output(self, name: str, stream: str = "stdout") -> str:
        """What the command NAME printed on STREAM in its last run, as the engine recorded it in the state."""
        assert self.stack is not None
        for resource in self.stack.export(show_secrets=True)["deployment"]["resources"]:
            if resource["type"] == COMMAND and resource["urn"].endswith(f"::{name}"):
                return plaintext(resource["outputs"][stream])
        raise KeyError(name)

    def etcdctl(self, host: str, command: str) -> Any:
        """The JSON answer of the real etcdctl of the etcd image (the container's root) to COMMAND, with the
        certificates kubeadm wrote on HOST, from HOST's member at its address (an external member listens on
        nothing else)."""
        script = (
            "pid=$(pgrep -x etcd | head -n1); sudo /proc/$pid/root/usr/local/bin/etcdctl "
            f"--endpoints=https://{self.lab.hosts[host].addresses[0]}:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
            "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt "
            f"--key=/etc/kubernetes/pki/etcd/healthcheck-client.key {command} -w json")
        return json.loads(self.lab.ssh(host, script).stdout)

    def etcd_members(self, host: str) -> list[dict]:
        """The real member list as HOST's member gives it (etcdctl's JSON: `isLearner` appears only when true, and a
        member not started yet has no name)."""
        return self.etcdctl(host, "member list")["members"]

    def etcd_member_names(self, host: str) -> list[str]:
        return sorted(m.get("name", "") for m in self.etcd_members(host))

    def control_plane_processes_left(self, host: str, seconds: float = 30) -> str:
        """The control plane's processes still running on HOST (`pgrep -l`; names as the kernel's 15-character
        comm), once there are none or after SECONDS: after `kubeadm reset` the kubelet stand-in's containers end
        within 50 ms (standins/kubelet.py CONTAINER)."""
        deadline = time.monotonic() + seconds
        while (left := self.lab.ssh(host, "pgrep -l -x 'etcd|kube-apiserver|kube-controller|kube-scheduler' || true"
                                    ).stdout.strip()) and time.monotonic() < deadline:
            time.sleep(1)
        return left

    def real_versions(self) -> str:
        """What runs, in the words of the real programs: kubeadm's, the API server's and etcd's versions."""
        kubeadm = self.lab.ssh(self.lab.config["nodes"][0]["name"], "kubeadm version -o short").stdout.strip()
        server = self.kubectl("version")["serverVersion"]["gitVersion"]
        etcd = [pod["spec"]["containers"][0]["image"].rsplit(":", 1)[1]
                for pod in self.kubectl("get pods -n kube-system -l component=etcd")["items"]]
        return f"real kubeadm {kubeadm}, kube-apiserver {server}, etcd {', '.join(sorted(set(etcd))) or 'none'}"

    def problems(self, config: dict[str, Any]) -> list[str]:
        """How the cluster differs from `config`: every node joined, right role and version (the real API
        server's view in a real lab, else the stand-ins' journal)."""
        version = target_version(config)
        try:
            members = self.real_members() if self.lab.real else self.members()
        except subprocess.CalledProcessError as error:
            return [f"the API server did not answer kubectl on the first control plane: {error.stderr.strip()}"]
        problems = []
        for node in config["nodes"]:
            if node["roles"] == ["etcd"]:
                etcd = self.etcd_member_names(node["name"]) if self.lab.real else self.lab.journal().get("externalEtcd", {})
                if node["name"] not in etcd:
                    problems.append(f"{node['name']}: not an etcd member")
                continue
            member = members.get(node["name"])
            role = "control-plane" if "control-plane" in node["roles"] else "worker"
            if member is None:
                problems.append(f"{node['name']}: not in the cluster")
            elif member["role"] != role:
                problems.append(f"{node['name']}: role {member['role']}, expected {role}")
            elif member["kubelet"] != version or (role == "control-plane" and member["controlPlane"] != version):
                problems.append(f"{node['name']}: kubelet {member['kubelet']} control plane "
                                f"{member['controlPlane']}, expected {version}")
        extra = set(members) - {n["name"] for n in config["nodes"]}
        problems += [f"{name}: in the cluster but not in the config" for name in sorted(extra)]
        return problems


def without_addons(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`config` with no add-ons (a stand-in lab has no API server for them), and what was taken out."""
    spec = parse_spec(config)
    changed = copy.deepcopy(config)
    taken = []
    if spec.cni.type != "none":
        changed["cni"] = {**(config.get("cni") or {}), "type": "none"}
        taken.append("cni.type none")
    if spec.ingress.controller != "none":
        changed["ingress"] = {"controller": "none"}
        taken.append("ingress.controller none")
    if spec.helm_releases:
        changed.pop("helmReleases")
        taken.append("no helmReleases")
    return changed, taken
