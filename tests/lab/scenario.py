"""What the lab scenarios share: journal queries, the secrets scan, re-running every script."""

from __future__ import annotations

import base64
import re
import subprocess
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Callable

from cluster import LabCluster
from conftest import CONFIGS
from hosts import BASTION, in_ns
from pulumi_cli import COMMAND, Result, plaintext



def wait_until(what: str, check: Callable[[], Any], seconds: float = 300) -> Any:
    """CHECK's first truthy result, asked every 2 s; fails naming WHAT after SECONDS."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(2)
    return result


def served_certificate(cluster, host: str, port: int, check: bool = True) -> str:
    """Serial and notBefore of the certificate the real process serves on HOST's PORT (openssl s_client on HOST):
    the API server on the host's address, etcd on 127.0.0.1 with kubeadm's healthcheck client pair. Without CHECK,
    empty when nothing serves there."""
    client = ("-cert /etc/kubernetes/pki/etcd/healthcheck-client.crt -key /etc/kubernetes/pki/etcd/healthcheck-client.key"
              if port == 2379 else "")
    address = "127.0.0.1" if port == 2379 else cluster.lab.hosts[host].addresses[0]
    script = (f"sudo openssl s_client -connect {address}:{port} {client} </dev/null 2>/dev/null"
              " | openssl x509 -noout -serial -startdate")
    return cluster.lab.ssh(host, script, check=check).stdout.strip()


def calls(cluster, tool: str, first_arg: str | None = None, since: int = 0) -> list[dict]:
    return [c for c in cluster.lab.journal()["calls"][since:]
            if c["tool"] == tool and (first_arg is None or c["argv"][:1] == [first_arg])]


def journal_mark(cluster) -> int:
    return len(cluster.lab.journal().get("calls", []))


def no_init_join_or_reset_since(cluster, mark: int) -> list[dict]:
    return [c for c in calls(cluster, "kubeadm", since=mark)
            if c["argv"][:1] in (["join"], ["reset"]) or (c["argv"][:1] == ["init"] and c["argv"][1:2] != ["phase"])]


def etcd_member(cluster: LabCluster, name: str) -> dict | None:
    """NAME's entry in the first control plane's real member list, or None, also while cp1's own member does not
    answer."""
    try:
        members = cluster.etcd_members("cp1")
    except (subprocess.CalledProcessError, ValueError):
        return None
    return next((m for m in members if m.get("name") == name), None)


def once_its_etcd_member(cluster: LabCluster, joining: str, action: Callable[[], None], *, voting: bool
                         ) -> threading.Thread:
    """ACTION runs (on a thread) once JOINING's etcd member started (its name in the first control plane's member
    list) or, with VOTING, once kubeadm also promoted it: join adds a stacked member as a learner and promotes it
    once started (phase control-plane-join-etcd, phases/etcd/local.go@v1.36.4), before it waits for the kubelet's
    TLS bootstrap, so the join is half-finished then, with no Node registered. Join the thread after the run."""
    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            member = etcd_member(cluster, joining)
            if member is not None and not (voting and member.get("isLearner")):
                action()
                return
            time.sleep(0.2)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


HOLD_TABLE = "kclab_hold_etcd_clients"


def join_killed_while_its_etcd_member_is_a_learner(cluster: LabCluster, joining: str) -> Future:
    """kubeadm join on JOINING dies after its stacked etcd member started as a learner and before kubeadm promotes
    it (phases/etcd/local.go@v1.36.4: add the learner, write etcd.yaml, promote once the member started). From the
    moment etcd.yaml is written, JOINING's traffic to other members' client port (2379) is dropped in its namespace,
    so kubeadm's promotion cannot reach them; the member's own traffic to its peers (2380) and its API server's
    (127.0.0.1) flow. Once the member started, kubeadm is killed and the traffic let through again. The future's
    result: the member as cp1 listed it before the kill."""
    namespace = cluster.lab.hosts[joining].namespace

    def hold_then_kill() -> dict:
        cluster.lab.ssh(joining, "sudo timeout 600 sh -c "
                                 "'until [ -f /etc/kubernetes/manifests/etcd.yaml ]; do sleep 0.05; done'")
        in_ns(namespace, "nft", "-f", "-", input=f"table inet {HOLD_TABLE} {{\n  chain out {{\n"
                                                 "    type filter hook output priority 0;\n"
                                                 "    tcp dport 2379 ip daddr != 127.0.0.0/8 drop\n  }\n}\n")
        try:
            member = wait_until(f"{joining}'s etcd member started", lambda: etcd_member(cluster, joining), 120)
            cluster.lab.ssh(joining, "sudo pkill -KILL -x kubeadm")
            return member
        finally:
            in_ns(namespace, "nft", "delete", "table", "inet", HOLD_TABLE)
    killed: Future = Future()

    def run() -> None:
        try:
            killed.set_result(hold_then_kill())
        except BaseException as error:  # noqa: BLE001 (the test reads it from the future)
            killed.set_exception(error)
    threading.Thread(target=run, daemon=True).start()
    return killed


def replaced_or_deleted(result: Result) -> list[str]:
    """Commands the engine replaced or deleted, with what it named as the cause of a replacement."""
    return [f"{s.name} ({s.action}: {', '.join(s.keys)})" for s in result.commands if s.action in ("replace", "delete")]


class Secrets:
    """The secret values the lab can read on its hosts, collected while they run, and where they must not be."""

    def __init__(self, cluster: LabCluster):
        self.cluster = cluster
        self.values: dict[str, str] = {}

    def _add_pem(self, label: str, text: str) -> None:
        for i, line in enumerate(text.splitlines()):
            if len(line) >= 40 and not line.startswith("-----"):
                self.values[f"{label} (line {i})"] = line

    def collect(self) -> None:
        lab = self.cluster.lab
        for path in sorted(lab.work.glob("*id_ed25519*")) + sorted(lab.work.glob("rotated-*")):
            if not path.name.endswith(".pub"):
                self._add_pem(f"SSH key {path.name}", path.read_text())
        journal = lab.journal()
        for token in [*journal.get("tokens", {}), *journal.get("deletedTokens", [])]:
            self.values[f"bootstrap token {token.split('.')[0]}"] = token
            self.values[f"bootstrap token secret {token.split('.')[0]}"] = token.split(".")[1]
        for key in [*journal.get("certificateKeys", {}), *journal.get("deletedCertificateKeys", [])]:
            self.values[f"certificate key {key[:6]}"] = key
        for key, secret in journal.get("objects", {}).items():  # the exported credentials' tokens
            if (secret.get("data") or {}).get("token"):
                self.values[f"credential token {key}"] = base64.b64decode(secret["data"]["token"]).decode()
        if lab.real:
            self._collect_from_api_server()
        files = ("/etc/kubernetes/pki/*.key /etc/kubernetes/pki/etcd/*.key /etc/kubernetes/admin.conf "
                 "/etc/keepalived/keepalived.conf")
        for name in lab.hosts:
            if name == BASTION:
                continue
            dump = lab.ssh(name, f"sudo sh -c 'for f in {files}; do [ -f \"$f\" ] && echo \"%%%% $f\" && cat \"$f\"; "
                                 "done; true'", check=False).stdout
            for block in dump.split("%%%% ")[1:]:
                path, _, text = block.partition("\n")
                if path.endswith(".key"):
                    self._add_pem(f"{name}:{path}", text)
                for data in re.findall(r"client-key-data: (\S+)", text):
                    self.values[f"{name} admin kubeconfig client key"] = data
                    self._add_pem(f"{name} admin kubeconfig client key (decoded)", base64.b64decode(data).decode())
                for password in re.findall(r"auth_pass (\S+)", text):
                    self.values[f"{name} VRRP password"] = password

    def _collect_from_api_server(self) -> None:
        """A real lab's bootstrap tokens and ServiceAccount token Secrets, as the real API server holds them."""
        for secret in self.cluster.kubectl("get secrets -A")["items"]:
            # Not every Secret is text: kubeadm-certs (upload-certs) holds encrypted bytes.
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
            name = f"{secret['metadata']['namespace']}/{secret['metadata']['name']}"
            if secret["type"] == "bootstrap.kubernetes.io/token":
                self.values[f"bootstrap token {data['token-id']}"] = f"{data['token-id']}.{data['token-secret']}"
                self.values[f"bootstrap token secret {data['token-id']}"] = data["token-secret"]
            elif secret["type"] == "kubernetes.io/service-account-token" and data.get("token"):
                self.values[f"credential token {name}"] = data["token"]

    def leaks(self) -> list[str]:
        """Which known secrets appear in `pulumi stack export` or anything the CLI printed."""
        self.collect()
        stack = self.cluster.stack
        text = stack.export_text() + "".join(stack.transcript)
        return sorted(label for label, value in self.values.items() if value in text)


@contextmanager
def lab_cluster(config: str, **kwargs):
    """A lab cluster whose state and CLI output are checked for secrets when it is done."""
    with LabCluster(CONFIGS / config, log=lambda _: None, **kwargs) as cluster:
        cluster.secrets = Secrets(cluster)
        yield cluster
        assert cluster.secrets.leaks() == []


def rerun_every_script(cluster) -> list[str]:
    """Run every command again as pulumi-command would: each one's stored command line (`update` if it has
    one, else `create`) over SSH as its user, with its stdin, in the state's order (dependency order).

    This is the idempotency check. The engine itself has no "run everything again": `pulumi up --replace`
    would run each `delete` (kubeadm reset) first, and an unchanged input runs nothing. So the command
    lines and stdin are taken from `pulumi stack export --show-secrets` — what the engine recorded — and
    run over the same SSH path.
    """
    deployment = cluster.stack.export(show_secrets=True)["deployment"]
    by_address = {host.addresses[0]: name for name, host in cluster.lab.hosts.items()}
    ran = []
    for resource in deployment["resources"]:
        if resource["type"] != COMMAND:
            continue
        inputs = {key: plaintext(value) for key, value in resource["inputs"].items()}
        script = inputs.get("update") or inputs.get("create")
        if not script:
            continue
        name = resource["urn"].rsplit("::", 1)[1]
        done = cluster.lab.ssh(by_address[inputs["connection"]["host"]], script, check=False,
                               stdin=inputs.get("stdin") or "")
        assert done.returncode == 0, f"{name} failed on its second run:\n{done.stdout}{done.stderr}"
        ran.append(name)
    return ran


def add_user_everywhere(cluster, user: str) -> None:
    """A second sudo user with the lab's key on every host, as an admin would add one."""
    for name in cluster.lab.hosts:
        cluster.lab.ssh(name, f"sudo useradd --create-home --shell /bin/bash {user} && "
                              f"echo '{user} ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/{user} >/dev/null && "
                              f"sudo install -d -m 700 -o {user} -g {user} /home/{user}/.ssh && "
                              f"sudo install -m 600 -o {user} -g {user} /home/kube/.ssh/authorized_keys "
                              f"/home/{user}/.ssh/authorized_keys")
