"""The real Pulumi CLI on this repo's program, for the lab: a thin driver that runs it and parses its JSON.

One stack per lab run, in a local backend (`file://STATE`) with the passphrase secrets provider. The
stack's config file lives beside the backend (`--config-file`), never in the repository; the SSH key
reaches it through `pulumi config set --secret` on stdin. `pulumi up --json` streams the engine's
events (pulumi pkg/backend/display/json.go@v3.274.1: `ShowJSONEvents`, one `apitype.EngineEvent` per
line, after the preview's digest, a pretty-printed document); `pulumi preview --json` prints the digest.
The CLI runs in the lab's client namespace, so the real pulumi-command provider makes the real SSH
connections from there.

Everything the CLI prints is kept in `transcript` (for the secrets checks), except the output of the
calls made with `--show-secrets`, which this module asks for only to read the hosts of the commands
(their `connection` is a secret) and outputs a scenario asks for in clear.
"""

from __future__ import annotations

import functools
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
INLINE = Path(__file__).resolve().parent / "inline_program.py"
sys.path.insert(0, str(Path(__file__).resolve().parent / "standins"))

from command_provider import lab_env  # noqa: E402

from tests import toolchain  # noqa: E402
PROJECT = "kubeadm-cluster"
COMMAND = "command:remote:Command"
SECRET_CONFIG = ("sshPrivateKey", "keepalivedAuthPass")
# The engine's step ops (pulumi sdk/go/common/apitype/updates.go@v3.274.1 OpType), as one action per resource.
REPLACE_OPS = ("replace", "create-replacement", "delete-replaced", "discard-replaced")
TIMEOUT = 3600


class PulumiError(Exception):
    """A CLI call that had to succeed did not; the message holds what it printed."""


@functools.cache
def toolchain_env() -> dict[str, str]:
    """os.environ with what `toolchain/build --env` exports: the built CLI on PATH, its own Pulumi home
    with the plugins installed, no update check, no plugin downloads. Builds what is missing first."""
    try:
        return toolchain.env(build=True)
    except toolchain.ToolchainUnavailable as error:
        raise PulumiError(f"toolchain/build failed: {error}") from None


@dataclass
class Step:
    """What the engine did to one resource in one run, from its ResourcePre/ResOutputs/ResOpFailed events."""

    urn: str
    type: str
    ops: list[str]
    started: int  # event sequence numbers: a total order of the run
    ended: int | None = None
    start_time: int = 0  # Unix seconds, as the engine stamps its events
    end_time: int | None = None
    failed: bool = False
    host: str | None = None
    keys: list[str] = field(default_factory=list)  # what the engine says causes a replacement

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[1]

    @property
    def action(self) -> str:
        if any(op in REPLACE_OPS for op in self.ops):
            return "replace"
        return self.ops[0]

    @property
    def seconds(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time


@dataclass
class Result:
    """One CLI operation: its exit status, everything it printed, its events, steps and error."""

    argv: list[str]
    returncode: int
    output: str
    events: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)  # preview digests
    steps: list[Step] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def commands(self) -> list[Step]:
        return [s for s in self.steps if s.type == COMMAND]

    def ran(self, action: str | None = None) -> list[str]:
        """Commands the engine acted on (not `same`), in the order it started them."""
        return [s.name for s in self.commands if s.action != "same" and (action is None or s.action == action)]

    def step(self, name: str) -> Step:
        matches = [s for s in self.steps if s.name == name and s.type == COMMAND]
        if len(matches) != 1:
            raise KeyError(f"{name}: {len(matches)} command steps in this run")
        return matches[0]

    def hosts_touched(self) -> set[str]:
        return {s.host for s in self.commands if s.action != "same" and s.host}

    @property
    def preview(self) -> dict[str, Any] | None:
        return self.documents[-1] if self.documents else None


def parse_output(stdout: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The engine events (one JSON object a line) and the preview digests (pretty-printed) of --json output."""
    events: list[dict[str, Any]] = []
    documents: list[dict[str, Any]] = []
    buffer: list[str] = []
    for line in stdout.splitlines():
        if buffer or line == "{":
            buffer.append(line)
            if line == "}":
                documents.append(json.loads("\n".join(buffer)))
                buffer = []
            continue
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            (events if "sequence" in value else documents).append(value)
    return events, documents


def steps_of(events: Iterable[dict[str, Any]]) -> list[Step]:
    """Per resource, the engine's ops in this run, when they started and ended, whether one failed."""
    steps: dict[str, Step] = {}
    for event in events:
        for kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
            payload = event.get(kind)
            if payload is None:
                continue
            meta = payload["metadata"]
            urn, op = meta["urn"], meta["op"]
            step = steps.get(urn)
            if kind == "resourcePreEvent":
                if step is None:
                    steps[urn] = Step(urn, meta["type"], [op], event["sequence"], start_time=event["timestamp"])
                elif op not in step.ops:
                    step.ops.append(op)
                steps[urn].keys = sorted(set(steps[urn].keys) | set(meta.get("keys") or []))
            elif step is not None:
                step.ended, step.end_time = event["sequence"], event["timestamp"]
                step.failed = step.failed or kind == "resOpFailedEvent"
    return sorted(steps.values(), key=lambda s: s.started)


def error_of(events: Sequence[dict[str, Any]], returncode: int, stderr: str) -> str | None:
    """The run's error as the engine reported it: each failing resource's name and message."""
    if returncode == 0:
        return None
    messages = []
    for event in events:
        diagnostic = event.get("diagnosticEvent")
        if diagnostic and diagnostic.get("severity") == "error":
            urn = diagnostic.get("urn") or ""
            name = urn.rsplit("::", 1)[1] if "::" in urn else ""
            text = diagnostic["message"].strip()
            messages.append(f"{name}: {text}" if name else text)
    return "\n".join(messages) or stderr.strip() or f"pulumi exited with status {returncode}"


def plaintext(value: Any) -> Any:
    """A value of `pulumi stack export --show-secrets`: secrets come as {sig, plaintext: JSON}."""
    if isinstance(value, dict) and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


class Stack:
    """One stack of this repo's program in a file backend; every call runs the real CLI."""

    def __init__(self, name: str, state: Path, prefix: Sequence[str] = (), passphrase: str | None = None,
                 log: Callable[[str], None] = lambda _: None, project: Path = REPO,
                 env: dict[str, str] | None = None):
        self.name = name
        self.extra_env = dict(env or {})  # e.g. SSL_CERT_FILE: the CA bundle the CLI's providers trust
        self.project = project
        self.project_name = yaml.safe_load((project / "Pulumi.yaml").read_text())["name"]
        self.state = Path(state)
        self.prefix = list(prefix)  # e.g. ["ip", "netns", "exec", "kclab-client"]
        self.config_file = self.state / f"Pulumi.{name}.yaml"
        self.passphrase = passphrase or secrets.token_urlsafe(24)
        self.log = log
        self.transcript: list[str] = []
        self.hosts: dict[str, str] = {}  # command URN → connection host, from the state (kept after deletes)
        self._secret_values: dict[str, str] = {}

    # -- running the CLI ------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        # The lab's pulumi-resource-command (standins/command_provider.py: the Go module proxy serves no
        # pulumi-command module) on PATH; every other plugin from the toolchain's Pulumi home.
        return {**lab_env(toolchain_env()),
                "PULUMI_BACKEND_URL": f"file://{self.state}",
                "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "NO_COLOR": "1",
                **self.extra_env}

    def argv(self, *args: str, program: bool = False) -> list[str]:
        """The command line; `program`: the operation runs the program (see inline_program.py)."""
        inline = [sys.executable, str(INLINE), str(self.project)] if program else []
        return [*self.prefix, *inline, "pulumi", *args, "--non-interactive"]

    def cli(self, *args: str, stdin: str = "", check: bool = True, cwd: Path | None = None,
            show_secrets: bool = False) -> subprocess.CompletedProcess:
        argv = self.argv(*args)
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env, cwd=cwd or self.project,
                              timeout=TIMEOUT)
        if not show_secrets:
            self.transcript.append(done.stdout + done.stderr)
        if check and done.returncode != 0:
            raise PulumiError(f"{' '.join(args[:2])} failed ({done.returncode}):\n"
                              f"{'(output withheld: it holds secrets)' if show_secrets else done.stdout + done.stderr}")
        return done

    def _stack_args(self) -> list[str]:
        return ["--stack", self.name, "--config-file", str(self.config_file)]

    # -- the stack and its config ---------------------------------------------------------------

    def init(self) -> "Stack":
        """Create the stack; its config file goes beside the backend (`stack init` writes the encryption
        salt into `Pulumi.<stack>.yaml` of the directory it runs in, so it runs in the state directory,
        with the project's own Pulumi.yaml copied there)."""
        self.state.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.project / "Pulumi.yaml", self.state / "Pulumi.yaml")
        self.cli("stack", "init", self.name, "--secrets-provider", "passphrase", "--no-select", cwd=self.state)
        (self.state / "Pulumi.yaml").unlink()
        return self

    def exists(self) -> bool:
        listed = self.cli("stack", "ls", "--json", "--all", check=False)
        return listed.returncode == 0 and any(
            s["name"].split("/")[-1] == self.name for s in json.loads(listed.stdout or "[]"))

    def set_config(self, config: dict[str, Any]) -> None:
        """The stack's config: plain keys written into its file, secret ones set through the CLI on stdin."""
        document = yaml.safe_load(self.config_file.read_text()) or {}
        previous = document.get("config") or {}
        plain = {f"{self.project_name}:{k}": v for k, v in config.items() if k not in SECRET_CONFIG}
        kept = {k: v for k, v in previous.items() if k.split(":", 1)[1] in SECRET_CONFIG
                and k.split(":", 1)[1] in config and self._secret_values.get(k) == config[k.split(":", 1)[1]]}
        document["config"] = {**plain, **kept}
        self.config_file.write_text(yaml.safe_dump(document, sort_keys=False))
        for key in SECRET_CONFIG:
            full = f"{self.project_name}:{key}"
            if key in config and full not in kept:
                self.cli("config", "set", "--secret", full, *self._stack_args(), stdin=config[key])
                self._secret_values[full] = config[key]

    # -- operations ------------------------------------------------------------------------------

    def _operation(self, args: list[str], on_event: Callable[[dict[str, Any], subprocess.Popen], None] | None = None,
                   program: bool = False) -> Result:
        argv = self.argv(*args, *self._stack_args(), program=program)
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=self.env, cwd=self.project)
        lines: list[str] = []
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith('{"sequence"'):
                event = json.loads(line)
                self._progress(event)
                if on_event:
                    on_event(event, process)
        stderr = process.stderr.read()
        process.wait()
        stdout = "".join(lines)
        self.transcript.append(stdout + stderr)
        events, documents = parse_output(stdout)
        result = Result(argv, process.returncode, stdout + stderr, events, documents, steps_of(events),
                        error_of(events, process.returncode, stderr), time.monotonic() - started)
        return result

    def _progress(self, event: dict[str, Any]) -> None:
        for kind, verb in (("resOutputsEvent", "done"), ("resOpFailedEvent", "FAILED")):
            payload = event.get(kind)
            if payload and payload["metadata"]["type"] == COMMAND and payload["metadata"]["op"] != "same":
                meta = payload["metadata"]
                self.log(f"[pulumi] {verb:6} {meta['op']:8} {meta['urn'].rsplit('::', 1)[1]}")

    def _with_hosts(self, result: Result) -> Result:
        self.read_hosts()
        for step in result.steps:
            step.host = self.hosts.get(step.urn)
        return result

    def up(self, config: dict[str, Any] | None = None, *extra: str,
           on_event: Callable[[dict[str, Any], subprocess.Popen], None] | None = None) -> Result:
        """`pulumi up --yes`: the default preview, then the update, non-interactive, as engine events."""
        if config is not None:
            self.set_config(config)
        self.read_hosts()  # the hosts of what this run may delete
        return self._with_hosts(self._operation(["up", "--yes", "--json", *extra], on_event, program=True))

    def preview(self, config: dict[str, Any] | None = None, *extra: str) -> Result:
        """`pulumi preview --json` (its digest in `documents`), or as text with extra flags like --diff."""
        if config is not None:
            self.set_config(config)
        as_json = "--diff" not in extra
        return self._operation(["preview", *(["--json"] if as_json else []), *extra], program=True)

    def refresh(self, *extra: str) -> Result:
        return self._with_hosts(self._operation(["refresh", "--yes", "--json", *extra]))

    def destroy(self, *extra: str) -> Result:
        self.read_hosts()
        return self._with_hosts(self._operation(["destroy", "--yes", "--json", *extra]))

    def cancel(self) -> subprocess.CompletedProcess:
        return self.cli("cancel", "--yes", "--stack", self.name, check=False)

    def export(self, show_secrets: bool = False) -> dict[str, Any]:
        done = self.cli("stack", "export", "--stack", self.name, *(["--show-secrets"] if show_secrets else []),
                        show_secrets=show_secrets)
        return json.loads(done.stdout)

    def export_text(self) -> str:
        return self.cli("stack", "export", "--stack", self.name).stdout

    def import_(self, deployment: dict[str, Any]) -> None:
        path = self.state / f"{self.name}-import.json"
        path.write_text(json.dumps(deployment))
        try:
            self.cli("stack", "import", "--stack", self.name, "--file", str(path))
        finally:
            path.unlink()

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        done = self.cli("stack", "output", "--json", "--stack", self.name,
                        *(["--show-secrets"] if show_secrets else []), show_secrets=show_secrets)
        return json.loads(done.stdout)

    def read_hosts(self) -> dict[str, str]:
        """Each command's connection host, from the state (the connection is a secret)."""
        if not self.exists_in_state():
            return self.hosts
        deployment = self.export(show_secrets=True).get("deployment", {})
        for resource in deployment.get("resources") or []:
            if resource.get("type") == COMMAND:
                connection = plaintext((resource.get("inputs") or {}).get("connection"))
                if isinstance(connection, dict) and connection.get("host"):
                    self.hosts[resource["urn"]] = connection["host"]
        return self.hosts

    def exists_in_state(self) -> bool:
        return (self.state / ".pulumi" / "stacks" / self.project_name / f"{self.name}.json").exists()

    def remove(self) -> None:
        """`pulumi stack rm --force`: the lab's machines are gone, so is what the stack recorded of them."""
        self.cli("stack", "rm", self.name, "--force", "--yes", check=False)
        self.config_file.unlink(missing_ok=True)


def interrupt(process: subprocess.Popen) -> None:
    """What Ctrl-C does to the CLI: SIGINT (the CLI then lets running steps finish and stops)."""
    process.send_signal(signal.SIGINT)
