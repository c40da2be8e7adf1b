"""A small stand-in for the Pulumi engine plus pulumi-command, for the lab.

The program runs under Pulumi mocks; every `command:remote:Command` it registers is carried out the
way pulumi-command does it: an SSH connection with the resource's own connection settings (key,
user, port, pinned host key, proxy), its `environment` set through SSH (refused like stock sshd
refuses it), `stdin` piped, the `create` (or `update`) command line run by the login shell, the
trailing newline of stdout/stderr trimmed, and a failure reported with the command's output.

Between runs the engine keeps each resource's inputs and outputs in a JSON state file, so the next
run does what `pulumi up` would: nothing for unchanged inputs, an update (the `update` command, else
`create`) for changed ones (ignore_changes honoured), a replace for changed `triggers` (delete
first with delete_before_replace), and deletes — with the stored command and connection, in reverse
creation order — for resources the program no longer registers. Kubernetes resources are recorded,
not applied. Registration runs in the SDK's thread pool, so independent commands run in parallel and
dependent ones wait, as in a real deployment.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _sync_await
from pulumi.runtime.proto import resource_pb2

from harness import COMMAND, unwrap

ACCEPTED_ENV = re.compile(r"^(LANG|LC_[A-Z_]+)$")  # Debian's stock sshd_config: AcceptEnv LANG LC_*



class CommandFailed(Exception):
    """What pulumi-command reports: the command line and its output (in clear, as the real one does)."""


@dataclass
class Operation:
    name: str
    action: str  # create | update | replace | delete | same
    host: str
    seconds: float


IDLE = ("same", "none")  # unchanged; or a change pulumi-command has no command for


@dataclass
class UpResult:
    operations: list[Operation] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None

    def ran(self, action: str | None = None) -> list[str]:
        return [op.name for op in self.operations if op.action not in IDLE and (action is None or op.action == action)]

    def hosts_touched(self) -> set[str]:
        return {op.host for op in self.operations if op.action not in IDLE}


class SshRunner:
    """Runs one command line over SSH the way pulumi-command's session.Run does."""

    def __init__(self, prefix: Sequence[str] = ()):
        self.prefix = list(prefix)  # e.g. ["ip", "netns", "exec", "kclab-client"]

    def __call__(self, connection: dict[str, Any], command: str, stdin: str | None,
                 environment: dict[str, str] | None) -> tuple[int, str, str]:
        for key in environment or {}:
            if not ACCEPTED_ENV.match(key):
                raise CommandFailed(f"Unable to set '{key}'. This only works if your SSH server is configured "
                                    f"to accept these variables via AcceptEnv.")
        with tempfile.TemporaryDirectory(prefix="kclab-ssh-") as tmp:
            argv = self._ssh_argv(connection, Path(tmp))
            for key, value in (environment or {}).items():
                argv[1:1] = ["-o", f"SetEnv={key}={value}"]
            result = subprocess.run([*self.prefix, *argv, command], input=stdin or "", capture_output=True,
                                    text=True, timeout=1800)
        return result.returncode, result.stdout, result.stderr

    def _ssh_argv(self, connection: dict[str, Any], tmp: Path, jump: bool = False) -> list[str]:
        key_file = tmp / ("proxy_key" if jump else "key")
        key_file.write_text(connection["privateKey"])
        key_file.chmod(0o600)
        known = tmp / ("proxy_known_hosts" if jump else "known_hosts")
        argv = ["ssh", "-i", str(key_file), "-p", str(int(connection.get("port") or 22)),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=15",
                "-o", "LogLevel=ERROR"]
        if connection.get("hostKey"):
            known.write_text(f"{connection['host']} {connection['hostKey']}\n")
            argv += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}"]
        else:  # pulumi-command without hostKey: InsecureIgnoreHostKey
            argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        if connection.get("proxy"):
            proxy = self._ssh_argv({**connection["proxy"], "privateKey": connection["proxy"].get("privateKey")
                                    or connection["privateKey"]}, tmp, jump=True)
            proxy_command = " ".join(proxy + ["-W", "%h:%p", f"{connection['proxy'].get('user', 'root')}@"
                                                               f"{connection['proxy']['host']}"])
            argv += ["-o", f"ProxyCommand={proxy_command}"]
        return argv + [f"{connection.get('user') or 'root'}@{connection['host']}"]


class LabMonitor(MockMonitor):
    def __init__(self, engine: "LabEngine"):
        super().__init__(_PassThroughMocks())
        self.engine = engine
        self.lock = threading.Lock()
        self.registered: set[str] = set()

    def RegisterResource(self, request):
        if request.type != COMMAND:
            return super().RegisterResource(request)
        urn = self.make_urn(request.parent, request.type, request.name)
        with self.lock:
            self.registered.add(urn)
        inputs = unwrap(rpc.deserialize_properties(request.object))
        outputs = self.engine.apply_command(urn, request.name, inputs, list(request.ignoreChanges),
                                            request.deleteBeforeReplace)
        state = {**inputs, **outputs}
        obj = _sync_await(rpc.serialize_properties(state, {}))
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, f"{request.name}-id", state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=f"{request.name}-id", object=obj)


class _PassThroughMocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args):
        return {}


def print_line(line: str) -> None:
    """One write per line: commands on different hosts finish in parallel threads."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class LabEngine:
    def __init__(self, state_path: Path, runner: SshRunner, log: Callable[[str], None] = print_line):
        self.rerun_all = False
        self.state_path = Path(state_path)
        self.runner = runner
        self.log = log
        self.lock = threading.Lock()
        self.state: dict[str, dict[str, Any]] = (
            json.loads(self.state_path.read_text()) if self.state_path.exists() else {})
        self.result = UpResult()

    # -- one resource ---------------------------------------------------------------------------

    def _run(self, name: str, action: str, inputs: dict[str, Any], command: str) -> dict[str, str]:
        connection = inputs["connection"]
        started = time.monotonic()
        self.log(f"[lab] {action:7} {name} on {connection['host']}")
        code, stdout, stderr = self.runner(connection, command, inputs.get("stdin"), inputs.get("environment"))
        with self.lock:
            self.result.operations.append(Operation(name, action, connection["host"], time.monotonic() - started))
        if code != 0:
            raise CommandFailed(f"{name}: Process exited with status {code}: running {command[:200]!r}...:\n"
                                f"{stdout}{stderr}")
        return {"stdout": stdout.rstrip("\n"), "stderr": stderr.rstrip("\n")}

    def _run_if(self, name: str, action: str, inputs: dict[str, Any], command: str | None) -> dict[str, str]:
        if command:
            return self._run(name, action, inputs, command)
        with self.lock:
            self.result.operations.append(Operation(name, "none", inputs["connection"]["host"], 0.0))
        return {"stdout": "", "stderr": ""}

    def _save(self) -> None:
        self.state_path.write_text(json.dumps(self.state, indent=1, sort_keys=True))

    def apply_command(self, urn: str, name: str, inputs: dict[str, Any], ignore_changes: list[str],
                      delete_before_replace: bool) -> dict[str, str]:
        with self.lock:
            previous = self.state.get(urn)
        if previous is not None:
            for key in ignore_changes:
                if key in previous["inputs"]:
                    inputs[key] = previous["inputs"][key]
                else:
                    inputs.pop(key, None)
        # As pulumi-command: no create, nothing runs (and nothing connects); an update runs `update`,
        # else `create`.
        if previous is None:
            outputs = self._run_if(name, "create", inputs, inputs.get("create"))
        elif previous["inputs"].get("triggers") != inputs.get("triggers"):
            if delete_before_replace and previous["inputs"].get("delete"):
                self._run(name, "delete", previous["inputs"], previous["inputs"]["delete"])
            outputs = self._run_if(name, "replace", inputs, inputs.get("create"))
            if not delete_before_replace and previous["inputs"].get("delete"):
                self._run(name, "delete", previous["inputs"], previous["inputs"]["delete"])
        elif previous["inputs"] != inputs or self.rerun_all:
            outputs = self._run_if(name, "update", inputs, inputs.get("update") or inputs.get("create"))
        else:
            with self.lock:
                self.result.operations.append(Operation(name, "same", inputs["connection"]["host"], 0.0))
            outputs = previous["outputs"]
        with self.lock:
            order = previous["order"] if previous else max((s["order"] for s in self.state.values()), default=0) + 1
            self.state[urn] = {"name": name, "inputs": inputs, "outputs": outputs, "order": order}
            self._save()
        return outputs

    # -- a whole run ----------------------------------------------------------------------------

    def up(self, config: dict[str, Any], program: Callable[[], dict[str, Any]], stack: str = "lab",
           rerun_all: bool = False) -> UpResult:
        """Run the program against the lab; returns what ran. Errors are returned, not raised.

        `rerun_all` re-runs every existing command's create as an update: the idempotency check.
        """
        self.rerun_all = rerun_all
        self.result = UpResult()
        values = {f"kubeadm-cluster:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
        pulumi.runtime.set_all_config(values, secret_keys=["kubeadm-cluster:sshPrivateKey"])
        monitor = LabMonitor(self)
        pulumi.runtime.set_mocks(monitor.mocks, project="kubeadm-cluster", stack=stack, preview=False,
                                 monitor=monitor)
        result = self.result

        @pulumi.runtime.test
        def run():
            outputs = program()
            return pulumi.Output.all(**outputs).apply(result.outputs.update)

        try:
            run()
        except BaseException as error:  # noqa: BLE001 — the run's failure is the result
            result.error = error
            return result
        self._delete_missing(monitor.registered)
        return result

    def destroy(self) -> UpResult:
        self.result = UpResult()
        try:
            self._delete_missing(set())
        except CommandFailed as error:
            self.result.error = error
        return self.result

    def _delete_missing(self, registered: set[str]) -> None:
        for urn, entry in sorted(self.state.items(), key=lambda item: -item[1]["order"]):
            if urn in registered:
                continue
            if entry["inputs"].get("delete"):
                self._run(entry["name"], "delete", entry["inputs"], entry["inputs"]["delete"])
            del self.state[urn]
            self._save()
