"""Running the whole program under Pulumi mocks and recording what it registers.

`run_program(config)` sets the stack config, runs `components.program.main()` with a recording
monitor and returns every registered resource with what the engine would see: inputs, parent,
dependencies (URNs, components expanded to their custom resources), ignore_changes,
delete_before_replace, additional_secret_outputs and provider.

Remote commands get canned stdout (join material, credential tokens, etcd CA, expiry report) whose secret
values are known, so tests can scan for them. In preview mode commands print nothing: their
stdout is unknown, as in a real preview of a fresh stack.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _sync_await

from components.config import SECRET_KEYS, ConfigError, parse_spec
from components.kubeconfig import credentials
from components.program import main

COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"
SECRET_SIG = "4dabf18193072939515e22adb298388d"

TOKEN = "abcdef.0123456789abcdef"
CERTIFICATE_KEY = "f" * 63 + "1"
CA_HASH = "sha256:" + "2" * 64
CLIENT_KEY_PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIsecretclientkeyAAAA\n-----END RSA PRIVATE KEY-----"
ETCD_MEMBER_KEY_MARK = "MIIsecretetcdmemberkey"
# The exported credentials' tokens (components/kubeconfig.py): admin's, and scoped-token-<name> for scoped ones.
ADMIN_TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LWFkbWluLXRva2Vu.c2ln"
CA_DATA = "Y2EtZGF0YQ=="
SSH_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1zZWNyZXQta2V5\n-----END OPENSSH PRIVATE KEY-----\n"
KEEPALIVED_AUTH_PASS = "vrrp5ecr"
ENCRYPTION_KEY = "c2VjcmV0Ym94LWtleS0zMi1ieXRlcy1sb25nLi4uLi4="
ENCRYPTION_CONFIG = ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
                     "  - resources: [secrets]\n    providers:\n      - secretbox:\n          keys:\n"
                     f"            - name: key1\n              secret: {ENCRYPTION_KEY}\n      - identity: {{}}\n")


def credentials_stdout(config: Mapping[str, Any], stack: str = "dev") -> str:
    """What kubeconfig.sh prints for `config`: the CA and a token per credential it names ("" if invalid)."""
    try:
        spec = parse_spec({k: v for k, v in config.items() if k not in SECRET_KEYS}, stack)
    except ConfigError:
        return ""
    tokens = {c.id: base64.b64encode((ADMIN_TOKEN if c.name == "admin" else f"scoped-token-{c.name}").encode()).decode()
              for c in credentials(spec)}
    return json.dumps({"ca": CA_DATA, "tokens": tokens})

CANNED_STDOUT = {
    "join-material": json.dumps({"token": TOKEN, "caCertHash": CA_HASH}),
    "certificate-upload": json.dumps({"certificateKey": CERTIFICATE_KEY}),
    "etcd-ca": json.dumps({"caCert": "-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----",
                           "clientCert": "-----BEGIN CERTIFICATE-----\nY2xp\n-----END CERTIFICATE-----",
                           "clientKey": CLIENT_KEY_PEM}),
    # A member's certificates as the first member signs them (etcd-member-certs.sh).
    **{f"etcd{i}-etcd-member-certs": json.dumps({
        f"{cert}{part}": f"-----BEGIN {kind}-----\n{cert}{part}etcd{i}{ETCD_MEMBER_KEY_MARK if part == 'Key' else ''}"
                         f"\n-----END {kind}-----"
        for cert in ("server", "peer", "healthcheckClient")
        for part, kind in (("Cert", "CERTIFICATE"), ("Key", "PRIVATE KEY"))}) for i in (2, 3)},
    # kubeadm's JSON (cmd/kubeadm/app/apis/output/v1alpha3/types.go@v1.36.4): the signing CA is caName.
    "certificate-expiry": json.dumps({"kind": "CertificateExpirationInfo", "certificates": [
        {"name": "admin.conf", "expirationDate": "2027-11-24T21:00:00Z", "caName": "ca", "missing": False}],
        "certificateAuthorities": [{"name": "ca", "expirationDate": "2036-11-22T21:00:00Z", "missing": False}]}),
    # An external etcd member's report: its own config has local etcd, so the control-plane files are missing.
    **{f"etcd{i}-etcd-certs-expiry": json.dumps({"kind": "CertificateExpirationInfo", "certificates": [
        {"name": "etcd-server", "expirationDate": f"2027-11-2{i}T21:00:00Z", "caName": "etcd-ca", "missing": False},
        {"name": "apiserver-etcd-client", "expirationDate": "2027-11-24T21:00:00Z", "caName": "etcd-ca",
         "missing": False},
        {"name": "apiserver", "expirationDate": "0001-01-01T00:00:00Z", "missing": True}],
        "certificateAuthorities": [{"name": "etcd-ca", "expirationDate": "2036-11-22T21:00:00Z", "missing": False},
                                   {"name": "ca", "expirationDate": "0001-01-01T00:00:00Z", "missing": True}]})
       for i in (1, 2, 3)},
}

# Plaintexts that must never appear outside a secret.
SECRET_PLAINTEXTS = {
    "bootstrap token": TOKEN,
    "certificate key": CERTIFICATE_KEY,
    "admin token": ADMIN_TOKEN,
    "etcd member key": ETCD_MEMBER_KEY_MARK,
    "etcd client key": "MIIsecretclientkeyAAAA",
    "ssh private key": "b3BlbnNzaC1zZWNyZXQta2V5",
    "keepalived password": KEEPALIVED_AUTH_PASS,
    "encryption-at-rest key": ENCRYPTION_KEY,
}


@dataclass
class Registered:
    typ: str
    name: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent: str
    dependencies: set[str]
    ignore_changes: list[str]
    delete_before_replace: bool
    additional_secret_outputs: list[str]
    provider: str
    custom: bool
    order: int

    @property
    def is_command(self) -> bool:
        return self.typ == COMMAND

    def plain(self, key: str) -> Any:
        """An input with the secret wrapper removed."""
        return unwrap(self.inputs.get(key))

    def is_secret(self, key: str) -> bool:
        value = self.inputs.get(key)
        return isinstance(value, dict) and value.get(SECRET_SIG) is not None

    @property
    def host(self) -> str:
        return unwrap(self.inputs["connection"])["host"]


def host_key_of(host: str) -> str:
    """The host key the mocks' scans find on `host` (a node name, or ssh.bastion)."""
    return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + base64.b64encode(host.encode()).decode().rstrip("=")


def unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


class ClusterMocks(pulumi.runtime.Mocks):
    def __init__(self, stdout: Callable[[str], str | None], stashed: Mapping[str, Any]):
        self.stdout = stdout
        self.stashed = stashed

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == "pulumi:index:Stash":
            # Created, it outputs its input; existing, what it was created with (pkg/resource/deploy/builtins.go@v3.274.1).
            outputs["output"] = self.stashed.get(args.name, args.inputs["input"])
        if args.typ == LOCAL_COMMAND or args.typ == COMMAND and args.name.endswith("-host-key-scan"):
            # components/host_keys.py: the scans and the records print the host's key
            if self.stdout(args.name) is not None:
                outputs.update(stdout=host_key_of(args.name.removesuffix("-scan").removesuffix("-host-key")),
                               stderr="")
        elif args.typ == COMMAND:
            text = self.stdout(args.name)
            if text is not None and args.name.endswith("-control-plane-files") and args.inputs.get("stdin"):
                text = ""  # only the first control plane's prints (the encryption configuration)
            if text is not None:
                outputs.update(stdout=text, stderr="")
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.lock = threading.Lock()
        self.records: list[Registered] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            with self.lock:
                self.records.append(Registered(
                    typ=request.type,
                    name=request.name,
                    urn=response.urn,
                    inputs=pulumi.runtime.rpc.deserialize_properties(request.object, keep_unknowns=True),
                    outputs=dict(self.resources[response.urn].state or {}),
                    parent=request.parent,
                    dependencies=set(request.dependencies),
                    ignore_changes=list(request.ignoreChanges),
                    delete_before_replace=request.deleteBeforeReplace,
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    provider=request.provider,
                    custom=request.custom,
                    order=len(self.records),
                ))
        return response


@dataclass
class Run:
    resources: list[Registered]
    outputs: dict[str, Any] = field(default_factory=dict)
    output_objects: dict[str, pulumi.Output] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def named(self, name: str) -> Registered:
        """The custom resource called `name` (components that share the name are skipped)."""
        matches = [r for r in self.resources if r.name == name and r.custom]
        assert len(matches) == 1, f"expected one resource named {name!r}, found {len(matches)}"
        return matches[0]

    @property
    def commands(self) -> list[Registered]:
        return [r for r in self.resources if r.is_command]

    def waits_for(self, urn: str) -> set[str]:
        """What the engine makes `urn` wait for: its dependencies and its parent (which waits for its own)."""
        record = next((r for r in self.resources if r.urn == urn), None)
        if record is None:
            return set()
        return record.dependencies | ({record.parent} if record.parent else set())

    def depends_on(self, later: str, earlier: str) -> bool:
        """Whether `later` waits for `earlier`, directly or through other resources."""
        seen, stack = set(), [self.named(later).urn]
        target = self.named(earlier).urn
        while stack:
            for dep in self.waits_for(stack.pop()):
                if dep == target:
                    return True
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return False

    def names(self) -> set[str]:
        return {r.name for r in self.resources}


BASE_NODES = [
    {"name": "cp1", "address": "10.0.0.11", "roles": ["control-plane"]},
    {"name": "cp2", "address": "10.0.0.12", "roles": ["control-plane"]},
    {"name": "cp3", "address": "10.0.0.13", "roles": ["control-plane"]},
    {"name": "w1", "address": "10.0.0.21", "roles": ["worker"], "labels": {"disk": "ssd"}},
    {"name": "w2", "address": "10.0.0.22", "roles": ["worker"],
     "taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]},
]


def base_config(**overrides: Any) -> dict[str, Any]:
    """A 3 control plane + 2 worker stack config, as Pulumi.dev.yaml holds it."""
    config: dict[str, Any] = {
        "kubernetesVersion": "1.36.4",
        "clusterName": "dev",
        "sshPrivateKey": SSH_PRIVATE_KEY,
        "ssh": {"user": "ubuntu"},
        "nodes": [dict(n) for n in BASE_NODES],
        "controlPlane": {"endpoint": "k8s-api.internal:6443"},
    }
    config.update(overrides)
    return config


def run_program(config: Mapping[str, Any], *, preview: bool = False, stack: str = "dev",
                stdout: Mapping[str, str | None] | None = None, secret_keys: tuple[str, ...] = (),
                stashed: Mapping[str, Any] | None = None) -> Run:
    """Run the program once with `config` (keys without the project prefix); `secret_keys` are set
    as secrets besides sshPrivateKey and keepalivedAuthPass; `stashed`: the outputs of Stash resources
    an earlier run created, by name."""
    values = {f"kubeadm-cluster:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    secrets = ("sshPrivateKey", "keepalivedAuthPass", *secret_keys)
    pulumi.runtime.set_all_config(values, secret_keys=[f"kubeadm-cluster:{k}" for k in secrets])
    canned = {**CANNED_STDOUT, "kubeconfig": credentials_stdout(config, stack), **(stdout or {})}
    mocks = ClusterMocks(lambda name: None if preview else canned.get(
        name, ENCRYPTION_CONFIG if name.endswith("-control-plane-files") else ""), stashed or {})
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="kubeadm-cluster", stack=stack, preview=preview, monitor=monitor)
    run = Run(monitor.records)

    @pulumi.runtime.test
    def program():
        run.output_objects = main()

        def collect(values: dict[str, Any]) -> None:
            run.outputs.update(values)

        return pulumi.Output.all(**run.output_objects).apply(collect, run_with_unknowns=True)

    try:
        program()
    except Exception as error:
        error.run = run  # type: ignore[attr-defined]  # what was registered before the failure
        raise
    run.secret_outputs = {key for key, output in run.output_objects.items()
                          if _sync_await(pulumi.Output.from_input(output).is_secret())}
    return run


@dataclass
class Plan:
    """What `pulumi up` would do going from one run's registrations to another's."""

    created: set[str]
    deleted: set[str]
    updated: set[str]
    replaced: set[str]

    @property
    def touched(self) -> set[str]:
        return self.created | self.deleted | self.updated | self.replaced


def plan(before: Run, after: Run) -> Plan:
    """Custom resources compared by URN; ignore_changes honoured; a trigger change is a replace."""
    old = {r.urn: r for r in before.resources if r.custom}
    new = {r.urn: r for r in after.resources if r.custom}
    updated, replaced = set(), set()
    for urn in old.keys() & new.keys():
        a, b = old[urn], new[urn]
        if unwrap(a.inputs.get("triggers")) != unwrap(b.inputs.get("triggers")):
            replaced.add(b.name)
            continue
        keys = (a.inputs.keys() | b.inputs.keys()) - set(b.ignore_changes) - {"triggers"}
        if any(unwrap(a.inputs.get(k)) != unwrap(b.inputs.get(k)) for k in keys):
            updated.add(b.name)
    return Plan(
        created={new[u].name for u in new.keys() - old.keys()},
        deleted={old[u].name for u in old.keys() - new.keys()},
        updated=updated,
        replaced=replaced,
    )


def inner_script(command_line: str) -> str:
    """The bash script inside the sudo wrapper a Command's create/delete holds."""
    from components.scripts import HEREDOC_MARK

    start = command_line.index(f"<<'{HEREDOC_MARK}'\n") + len(f"<<'{HEREDOC_MARK}'\n")
    return command_line[start:command_line.index(f"\n{HEREDOC_MARK}\n", start) + 1]


def script_param(script: str, name: str) -> str:
    """The value a rendered script assigns to parameter NAME, as bash itself reads it."""
    import subprocess

    header = script.split("set -euo pipefail\n", 1)[1].split("# Helpers shared by every rendered script", 1)[0]
    result = subprocess.run(["bash", "-c", f'{header}\nprintf %s "${name}"'], capture_output=True, text=True, check=True)
    return result.stdout
