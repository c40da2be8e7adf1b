"""Stand-in for the pulumi-command provider plugin (`pulumi-resource-command` 1.2.1): `command:remote:Command` and
`command:local:Command`.

The Go module proxy serves no version of github.com/pulumi/pulumi-command/provider (toolchain/versions), so
the real plugin cannot be built here. The real Pulumi engine starts this server like any provider plugin and
speaks the real provider gRPC protocol to it: ordering, diffs turned into updates or replacements,
ignore_changes, delete_before_replace, secrets in state, preview, refresh, destroy and cancellation are the
engine's own. Only the provider's CRUD is imitated, each behaviour citing the upstream file:

  pulumi-command v1.2.1 (github.com/pulumi/pulumi-command, tag v1.2.1), abbreviated `command@v1.2.1`;
  pulumi-go-provider v1.3.0 (required by command@v1.2.1's provider/go.mod), abbreviated `go-provider@v1.3.0`;
  pulumi sdk v3.224.0 (idem), golang.org/x/crypto v0.48.0 (idem).

The command runs over SSH with the OpenSSH client instead of x/crypto/ssh: one master connection per run
(the "dial", retried like upstream), then one session over it (the command). What differs from the real
provider:

- password, privateKeyPassword (encrypted keys) and ssh-agent authentication are refused with a clear error
  (OpenSSH in BatchMode cannot be fed a password); only privateKey is used.
- `environment`: the stand-in cannot ask the server, so it assumes stock sshd (`AcceptEnv LANG LC_*`, the lab's
  Debian sshd_config): other keys fail with upstream's error, LANG/LC_* are set (SetEnv on the connection).
- dial errors are OpenSSH's, translated to the Go texts for refused/unreachable/timeout/auth/host-key failures;
  through a proxy the TCP dial from the bastion and the handshake are one retried step, not two.
- environment keys are checked in sorted order (Go iterates the map in random order).
- a remote command killed by a signal reports OpenSSH's exit status, not `from signal X`.
- Cancel ends dial retries (as upstream) but a running command runs on (as upstream); the commands of a killed
  plugin die with it (SIGTERM to ssh), like the dropped connections of a killed upstream plugin.
- local:Command: assetPaths and archivePaths are refused with a clear error (no assets or archives).
- GetSchema, Invoke, Call, Construct, CopyToRemote, CopyFile are not implemented.
- a stdout/stderr line longer than 64 KiB is logged (upstream's bufio.Scanner stops there and its pipe blocks).

    python command_provider.py [--logtostderr] [-v=N] [--tracing ADDR] ENGINE_ADDRESS
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, plugin_pb2, provider_pb2, provider_pb2_grpc

VERSION = "1.2.1"  # GetPluginInfo: the version the SDK requests (pulumi_command/pulumi-plugin.json)
TOKEN = "command:remote:Command"
LOCAL_TOKEN = "command:local:Command"
BIN_DIR = Path(__file__).resolve().parent / "bin"

# Property-value markers of the provider protocol (sdk/go/common/resource/plugin/rpc.go, sig package).
SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

# command@v1.2.1 provider/pkg/provider/remote/command.go (CommandInputs) + common/inputs.go (ResourceInputs).
INPUT_KEYS = ("triggers", "create", "update", "delete", "stdin", "logging", "connection", "environment",
              "addPreviousOutputInEnv")
# command@v1.2.1 provider/pkg/provider/local/command.go (CommandInputs) = common.ResourceInputs + local/base.go
# BaseInputs: no connection, no defaults, no secret fields.
LOCAL_INPUT_KEYS = ("triggers", "create", "update", "delete", "stdin", "logging", "interpreter", "dir",
                    "environment", "assetPaths", "archivePaths", "addPreviousOutputInEnv")
# command@v1.2.1 remote/connection.go (connectionBase, Connection.Proxy).
CONNECTION_KEYS = ("user", "password", "host", "port", "privateKey", "privateKeyPassword", "agentSocketPath",
                   "dialErrorLimit", "perDialTimeout", "hostKey")
SECRET_CONNECTION_KEYS = ("password", "privateKey", "privateKeyPassword")  # provider:"secret" tags
# command@v1.2.1 remote/connection.go Connection.Annotate / proxyConnection.go ProxyConnection.Annotate:
# SetDefault user "root", port 22, dialErrorLimit 10 (dialErrorDefault), perDialTimeout 15.
CONNECTION_DEFAULTS = {"user": "root", "port": 22.0, "dialErrorLimit": 10.0, "perDialTimeout": 15.0}
# command@v1.2.1 remote/commandOutputs.go logAndWrapSetenvErr (a Go raw string: newlines and tabs verbatim).
SETENV_MESSAGE = ("Unable to set '{key}'. This only works if your SSH server is configured to accept\n"
                  "\tthese variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote "
                  "host, you could\n\tprefix the command itself with the variables in the form 'VAR=value command'")
# Debian's stock sshd_config: `AcceptEnv LANG LC_*` (the lab's hosts run it unchanged, tests/lab/hosts.py).
ACCEPTED_ENV = re.compile(r"^(LANG|LC_.*)$")


class CommandError(Exception):
    """An operation's failure; its text is what the engine reports."""


# ---- property values ------------------------------------------------------------------------------------------

def is_secret(v: Any) -> bool:
    return isinstance(v, dict) and v.get(SIG) == SECRET_SIG


def unwrap(v: Any) -> tuple[Any, bool]:
    return (v.get("value"), True) if is_secret(v) else (v, False)


def make_secret(v: Any) -> Any:
    return v if is_secret(v) else {SIG: SECRET_SIG, "value": v}


def plain(v: Any) -> Any:
    """The value without secret markers (what the provider's Go structs see after decoding)."""
    if is_secret(v):
        return plain(v.get("value"))
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def _skip_nulls(v: Any) -> Any:
    # go-provider@v1.3.0 provider.go getMap: plugin.UnmarshalProperties(..., SkipNulls: true)
    if isinstance(v, dict):
        return {k: _skip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_skip_nulls(x) for x in v]
    return v


def to_map(s: struct_pb2.Struct) -> dict[str, Any]:
    return _skip_nulls(json_format.MessageToDict(s)) if s is not None else {}


def to_struct(m: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(m)
    return s


def deep_equals(a: Any, b: Any) -> bool:
    """resource.PropertyValue.DeepEquals (pulumi sdk@v3.224.0 go/common/resource/properties_diff.go): secrets equal
    secrets wrapping equal values, never a plain value. Secrets nested inside a secret are compared by value: the
    engine's state may keep or flatten them, and both are the same input."""
    if is_secret(a) or is_secret(b):
        return is_secret(a) and is_secret(b) and plain(a) == plain(b)
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        return all(k in a and k in b and deep_equals(a[k], b[k]) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(deep_equals(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def _path(prefix: str, key: Any) -> str:
    # resource.PropertyPath.String(): name, .name, [index], ["quoted"] for names that are not identifiers.
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if re.fullmatch(r"[a-zA-Z_$][a-zA-Z0-9_$]*", key):
        return f"{prefix}.{key}" if prefix else key
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{prefix}["{quoted}"]'


def object_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """PropertyMap.Diff + plugin.NewDetailedDiffFromObjectDiff (pulumi sdk@v3.224.0 go/common/resource/
    properties_diff.go, go/common/resource/plugin/provider.go): path → add | delete | update, recursing into
    objects and arrays, not into secrets."""
    out: dict[str, str] = {}
    for k, o in old.items():
        if k in new:
            n = new[k]
            if o is None and n is not None:
                out[_path(prefix, k)] = "add"
            elif o is not None and n is None:
                out[_path(prefix, k)] = "delete"
            else:
                out.update(_value_diff(o, n, _path(prefix, k)))
        elif o is not None:
            out[_path(prefix, k)] = "delete"
    for k, n in new.items():
        if k not in old and n is not None:
            out[_path(prefix, k)] = "add"
    return out


def _value_diff(o: Any, n: Any, path: str) -> dict[str, str]:
    if isinstance(o, list) and isinstance(n, list):
        out: dict[str, str] = {}
        for i in range(len(o), len(n)):
            out[_path(path, i)] = "add"
        for i in range(len(n), len(o)):
            out[_path(path, i)] = "delete"
        for i in range(min(len(o), len(n))):
            out.update(_value_diff(o[i], n[i], _path(path, i)))
        return out
    if isinstance(o, dict) and isinstance(n, dict) and not is_secret(o) and not is_secret(n):
        return object_diff(o, n, path)
    return {} if deep_equals(o, n) else {path: "update"}


def contains_unknowns(v: Any) -> bool:
    if v == UNKNOWN:
        return True
    if isinstance(v, dict):
        return any(contains_unknowns(x) for x in v.values())
    if isinstance(v, list):
        return any(contains_unknowns(x) for x in v)
    return False


# ---- Check ----------------------------------------------------------------------------------------------------

def check_connection(value: Any, type_name: str, failures: list[tuple[str, str]], path: str) -> Any:
    """Decode (unknown keys dropped), defaults, secrets of one connection (go-provider@v1.3.0 infer/resource.go
    Check → decodeCheckingMapErrors, defaultCheck (infer/apply_defaults.go), applySecrets (infer/apply_secrets.go))."""
    inner, secret = unwrap(value)
    if not isinstance(inner, dict):
        return value  # unknown, or a shape the decoder reports elsewhere: left as it came
    keys = CONNECTION_KEYS + (("proxy",) if type_name == "remote.Connection" else ())
    conn = {k: v for k, v in inner.items() if k in keys}
    if "host" not in conn:
        # sdk@v3.224.0 go/common/util/mapper/errors.go: "Missing required field '%v' on '%v'"
        failures.append((f"{path}.host", f"Missing required field 'host' on '{type_name}'"))
    for k, default in CONNECTION_DEFAULTS.items():
        conn.setdefault(k, default)
    for k in SECRET_CONNECTION_KEYS:
        if k in conn:
            conn[k] = make_secret(conn[k])
    if "proxy" in conn:
        conn["proxy"] = check_connection(conn["proxy"], "remote.ProxyConnection", failures, f"{path}.proxy")
    return make_secret(conn) if secret else conn


def check(news: dict[str, Any], token: str = TOKEN) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    failures: list[tuple[str, str]] = []
    if token == LOCAL_TOKEN:
        return {k: v for k, v in news.items() if k in LOCAL_INPUT_KEYS}, failures
    # infer.Check: ende.Decode into CommandInputs then Encode: only the struct's fields come back.
    inputs = {k: v for k, v in news.items() if k in INPUT_KEYS}
    if "connection" not in inputs:
        failures.append(("connection", "Missing required field 'connection' on 'remote.CommandInputs'"))
    else:
        inputs["connection"] = check_connection(inputs["connection"], "remote.Connection", failures, "connection")
        # command@v1.2.1 remote/command.go: Connection `provider:"secret"`; applySecrets marks it.
        inputs["connection"] = make_secret(inputs["connection"])
    return inputs, failures


# ---- Diff -----------------------------------------------------------------------------------------------------

def diff(state: dict[str, Any], news: dict[str, Any], old_inputs: dict[str, Any] | None,
         ignore_changes: list[str], input_keys: tuple[str, ...] = INPUT_KEYS) -> provider_pb2.DiffResponse:
    """go-provider@v1.3.0 infer/resource.go derivedResourceController.Diff + diff, provider.go DiffResponse.rpc."""
    news = dict(news)
    for key in ignore_changes:  # req.State.GetOk(ignoredChange): a top-level key of the state
        if key in state:
            news[key] = state[key]
    for key in list(news):  # "We ignore version input from the engine and any underscore-prefixed properties"
        if key == "version" or key.startswith("__"):
            del news[key]
    if old_inputs is None:  # the engine did not send old inputs: fabricated from the state's input keys
        old_inputs = {k: state[k] for k in input_keys if k in state}
    detailed = object_diff(old_inputs, news)
    kinds, replaces, diffs = {}, set(), set()
    for path, kind in detailed.items():
        # Command implements CustomUpdate, so forceReplace(k) is the schema's replaceOnChanges for the *whole
        # path string* k: only `triggers` itself (added, deleted or not an array on one side), never `triggers[0]`
        # (command@v1.2.1 common/inputs.go: Triggers `provider:"replaceOnChanges"`; everything else updates).
        replace = path == "triggers"
        kinds[path] = provider_pb2.PropertyDiff(kind={
            ("add", False): provider_pb2.PropertyDiff.ADD, ("add", True): provider_pb2.PropertyDiff.ADD_REPLACE,
            ("delete", False): provider_pb2.PropertyDiff.DELETE,
            ("delete", True): provider_pb2.PropertyDiff.DELETE_REPLACE,
            ("update", False): provider_pb2.PropertyDiff.UPDATE,
            ("update", True): provider_pb2.PropertyDiff.UPDATE_REPLACE}[kind, replace])
        head = re.match(r'[^.\[]+|\["(?:\\.|[^"])*"\]', path)
        head_key = head.group(0) if head else path
        diffs.add(head_key)
        if replace:
            replaces.add(head_key)
    return provider_pb2.DiffResponse(
        replaces=sorted(replaces), stables=[], diffs=sorted(diffs), detailedDiff=kinds, hasDetailedDiff=True,
        # "TODO: how shoould we set this? DeleteBeforeReplace: ???": never set, so the engine decides.
        deleteBeforeReplace=False,
        changes=provider_pb2.DiffResponse.DIFF_SOME if detailed else provider_pb2.DiffResponse.DIFF_NONE)


# ---- Go formatting --------------------------------------------------------------------------------------------

def go_quote(s: str) -> str:
    """fmt's %q of a string (strconv.Quote)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # net.JoinHostPort


# ---- SSH -------------------------------------------------------------------------------------------------------

# An ssh child dies with the provider (as x/crypto's connections do with the upstream process): setpriv sets
# PR_SET_PDEATHSIG and execs ssh (a preexec_fn would run Python in a forked gRPC process, which can abort).
SSH = ["setpriv", "--pdeathsig", "TERM", "ssh"]


class Operation:
    """One provider call's context: cancelled by Cancel (go-provider@v1.3.0 middleware/cancel/cancel.go: every
    call's context, and every later one's, is cancelled) or its custom timeout."""

    def __init__(self, provider: "CommandProvider", urn: str, timeout: float = 0.0):
        self.provider = provider
        self.urn = urn
        self.deadline = time.monotonic() + timeout if timeout else None

    def error(self) -> str | None:
        if self.provider.cancelled.is_set():
            return "context canceled"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "context deadline exceeded"
        return None

    def wait(self, seconds: float) -> str | None:
        """retry.Until's `select { case <-time.After(delay): case <-ctx.Done(): }`."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.provider.cancelled.wait(min(left, 0.05)):
                break
            if self.error():
                break
        return self.error()

    def log(self, severity: int, message: str, ephemeral: bool) -> None:
        self.provider.log(severity, message, self.urn, ephemeral)


class Master:
    """One SSH connection (x/crypto ssh.Client): an OpenSSH ControlMaster in the foreground; sessions are mux
    clients of it."""

    def __init__(self, tmp: Path, name: str):
        self.tmp = tmp
        self.name = name
        self.socket = tmp / f"{name}.sock"
        self.process: subprocess.Popen | None = None
        self.host_key_type: str | None = None  # the one host key algorithm offered (a pinned hostKey's type)

    def options(self, conn: dict[str, Any]) -> list[str]:
        """ssh options for connectionBase.SSHConfig (command@v1.2.1 remote/connection.go)."""
        if conn.get("password") is not None and conn.get("privateKey") is None:
            raise CommandError("the lab's pulumi-command stand-in supports privateKey authentication only "
                               "(connection.password given without privateKey)")
        if conn.get("privateKeyPassword") is not None:
            raise CommandError("the lab's pulumi-command stand-in cannot use an encrypted private key "
                               "(connection.privateKeyPassword)")
        if conn.get("agentSocketPath") is not None:
            raise CommandError("the lab's pulumi-command stand-in does not use an SSH agent "
                               "(connection.agentSocketPath)")
        key = self.tmp / f"{self.name}.key"
        # LogLevel INFO: OpenSSH logs a failed algorithm negotiation ("no matching host key type") at INFO.
        opts = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=INFO", "-o", "IdentityAgent=none",
                "-o", "IdentitiesOnly=yes", "-o", "GlobalKnownHostsFile=/dev/null",
                "-p", str(int(conn["port"])), "-l", str(conn["user"])]
        if conn.get("privateKey") is not None:
            key.write_text(conn["privateKey"] if conn["privateKey"].endswith("\n") else conn["privateKey"] + "\n")
            key.chmod(0o600)
            opts += ["-o", f"IdentityFile={key}"]
        else:
            opts += ["-o", "IdentityFile=none"]
        if int(conn.get("perDialTimeout") or 0) > 0:  # ClientConfig.Timeout; 0 means none
            opts += ["-o", f"ConnectTimeout={int(conn['perDialTimeout'])}"]
        if conn.get("hostKey") is not None:
            # connectionBase.SSHConfig (command@v1.2.1 remote/connection.go lines 88-103): `if con.HostKey != nil` (an
            # empty string too) → ssh.ParseAuthorizedKey, then
            # ssh.FixedHostKey(publicKey) with HostKeyAlgorithms = []string{publicKey.Type()}: exactly that one
            # algorithm is offered (x/crypto@v0.48.0 ssh/handshake.go: the client sends config.HostKeyAlgorithms
            # as they are; an RSA key's type is "ssh-rsa", the SHA-1 signature OpenSSH >= 8.8 refuses by default).
            key_type, blob = parse_authorized_key(conn["hostKey"])
            self.host_key_type = key_type
            known = self.tmp / f"{self.name}.known_hosts"
            known.write_text(f"pinned-host-key {key_type} {blob}\n")
            opts += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                     "-o", "HostKeyAlias=pinned-host-key", "-o", f"HostKeyAlgorithms={key_type}"]
        else:  # ssh.InsecureIgnoreHostKey()
            opts += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        return opts

    def connect(self, conn: dict[str, Any], extra: list[str]) -> str | None:
        """One dial attempt; None on success, else the error text as Go would print it."""
        self.close()
        err_file = self.tmp / f"{self.name}.err"
        with err_file.open("w") as err:
            self.process = subprocess.Popen(
                [*SSH, *self.options(conn), *extra, "-o", "ControlMaster=yes", "-o", f"ControlPath={self.socket}",
                 "-o", "ControlPersist=no", "-N", "-T", str(conn["host"])],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        while self.process.poll() is None:
            if self.socket.exists():  # ssh.c: muxserver_listen runs after authentication
                return None
            time.sleep(0.01)
        return dial_error(err_file.read_text(), str(conn["host"]), int(conn["port"]), self.host_key_type)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def parse_authorized_key(text: str) -> tuple[str, str]:
    """x/crypto@v0.48.0 ssh/keys.go ParseAuthorizedKey, for the forms a hostKey takes: the first line that is not
    blank or a comment, `TYPE BASE64 [COMMENT]`; the key's type is the one inside the decoded blob (the text's
    first field is not checked). Not imitated: an options prefix, and the `; last parsing error …` suffix."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#"):
            continue
        try:
            blob = base64.b64decode(fields[1], validate=True)
            key_type = blob[4:4 + int.from_bytes(blob[:4], "big")].decode("ascii")
        except (ValueError, UnicodeDecodeError):
            continue
        if key_type in ("ssh-ed25519", "ssh-rsa", "ssh-dss") or key_type.startswith(("ecdsa-sha2-", "sk-")):
            return key_type, fields[1]
    # remote/connection.go: fmt.Errorf("failed to parse host key: %w", err)
    raise CommandError("failed to parse host key: ssh: no key found")


def dial_error(stderr: str, host: str, port: int, host_key_type: str | None = None) -> str:
    """OpenSSH's failure, in the words of Go's net.Dial and x/crypto/ssh (x/crypto@v0.48.0 ssh/client.go
    `ssh: handshake failed: %w`, FixedHostKey `ssh: host key mismatch`, client_auth.go `ssh: unable to
    authenticate, attempted methods %v, no supported methods remain`)."""
    endpoint = join_host_port(host, port)
    text = " ".join(line.strip() for line in stderr.splitlines() if line.strip())
    for needle, go in (("Connection refused", "connect: connection refused"),
                       ("No route to host", "connect: no route to host"),
                       ("Network is unreachable", "connect: network is unreachable"),
                       ("Connection timed out", "i/o timeout")):
        if needle in text and "channel" not in text:
            return f"dial tcp {endpoint}: {go}"
    if "Permission denied" in text:
        return ("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], "
                "no supported methods remain")
    if "Host key verification failed" in text or "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return "ssh: handshake failed: ssh: host key mismatch"
    offer = re.search(r"no matching host key type found\. Their offer: (\S+)", text)
    if offer:  # common.go AlgorithmNegotiationError; ours is the HostKeyAlgorithms option's one algorithm
        return (f"ssh: handshake failed: ssh: no common algorithm for host key; we offered: "
                f"[{host_key_type or ''}], peer offered: [{offer.group(1).replace(',', ' ')}]")
    if "open failed" in text or "stdio forwarding failed" in text:
        return f"ssh: rejected: connect failed ({text})"
    return f"ssh: handshake failed: {text or 'ssh exited without a message'}"


def dial_with_retry(op: Operation, msg: str, max_attempts: int, attempt: Callable[[], str | None]) -> None:
    """command@v1.2.1 remote/connection.go dialWithRetry over sdk@v3.224.0 go/common/util/retry/until.go:
    delay 100 ms ×1.5 up to 5 s between attempts; give up when dials > dialErrorLimit (-1: never), with
    `after %d failed attempts: %w` (%d is the 0-based try); `%s %d/%s failed: retrying` as a status line."""
    delay, try_ = 0.1, 0
    while True:
        delay = min(delay, 5.0)
        error = attempt()
        if error is None:
            return
        dials = try_ + 1
        if max_attempts > -1 and dials > max_attempts:
            raise CommandError(f"after {try_} failed attempts: {error}")
        limit = "inf" if max_attempts == -1 else str(max_attempts)
        op.log(engine_pb2.INFO, f"{msg} {dials}/{limit} failed: retrying", ephemeral=True)
        if (ctx_error := op.wait(delay)) is not None:
            raise CommandError(ctx_error)
        delay *= 1.5
        try_ += 1


def run_command(op: Operation, state: dict[str, Any], command: str) -> tuple[str, str]:
    """CommandOutputs.run (command@v1.2.1 remote/commandOutputs.go): dial, set environment, run, capture."""
    conn = plain(state["connection"])
    # Accepted variables go on the master: OpenSSH sends SetEnv from the connection's options for every session
    # (clientloop.c client_session2_setup), a mux client's own are not used. Refused ones fail in _session.
    setenv = [f"SetEnv={k}={v}" for k, v in sorted((plain(state.get("environment")) or {}).items())
              if ACCEPTED_ENV.match(k)]
    setenv = [arg for opt in setenv for arg in ("-o", opt)]
    with tempfile.TemporaryDirectory(prefix="kclab-command-") as tmp_name:
        tmp = Path(tmp_name)
        target = Master(tmp, "target")
        bastion = Master(tmp, "proxy")
        try:
            extra: list[str] = []
            if conn.get("proxy"):
                # Connection.Dial: dial the proxy (its own dialErrorLimit), then the target through it;
                # every error of the proxied path is prefixed "proxy: ".
                proxy = conn["proxy"]
                try:
                    dial_with_retry(op, "Dial proxy", int(proxy["dialErrorLimit"]),
                                    lambda: bastion.connect(proxy, []))
                except CommandError as e:
                    raise CommandError(f"proxy: {e}") from None
                extra = ["-o", f"ProxyCommand=ssh -F /dev/null -o ControlPath={bastion.socket} -W %h:%p "
                               f"{proxy['host']}"]
                try:
                    dial_with_retry(op, "Dial", int(conn["dialErrorLimit"]),
                                    lambda: target.connect(conn, extra + setenv))
                except CommandError as e:
                    raise CommandError(f"proxy: {e}") from None
            else:
                dial_with_retry(op, "Dial", int(conn["dialErrorLimit"]), lambda: target.connect(conn, setenv))
            return _session(op, state, conn, target, command)
        finally:
            target.close()
            bastion.close()


def _session(op: Operation, state: dict[str, Any], conn: dict[str, Any], master: Master,
             command: str) -> tuple[str, str]:
    for key in sorted(plain(state.get("environment")) or {}):
        if not ACCEPTED_ENV.match(key):
            # session.Setenv fails ("ssh: setenv failed", x/crypto@v0.48.0 ssh/session.go) → logged as an
            # error and returned wrapped.
            op.log(engine_pb2.ERROR, SETENV_MESSAGE.format(key=key), ephemeral=False)
            raise CommandError(f"could not set environment variable {go_quote(key)}: ssh: setenv failed")
    if state.get("addPreviousOutputInEnv") in (None, True):
        # Previous stdout/stderr as PULUMI_COMMAND_STDOUT/STDERR "optimistically": stock sshd refuses them, so
        # upstream logs a warning and goes on.
        for key, field in (("PULUMI_COMMAND_STDOUT", "stdout"), ("PULUMI_COMMAND_STDERR", "stderr")):
            if state.get(field):
                op.log(engine_pb2.WARNING, SETENV_MESSAGE.format(key=key), ephemeral=False)
    stdin = plain(state.get("stdin"))
    process = subprocess.Popen(
        [*SSH, "-F", "/dev/null", "-o", f"ControlPath={master.socket}", "-o", "ControlMaster=no",
         "-o", "LogLevel=ERROR", "-T", str(conn["host"]), command],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    code, text = _capture(op, process, stdin, state.get("logging"))
    if code != 0:
        # fmt.Errorf("%w: running %q:\n%s", err, cmd, stdouterrbuf.String()) with ssh.ExitError's text
        raise CommandError(f"Process exited with status {code}: running {go_quote(command)}:\n{text['both']}")
    # strings.TrimSuffix(..., "\n"): one trailing newline only
    return text["stdout"].removesuffix("\n"), text["stderr"].removesuffix("\n")


# Go's syscall.Signal.String() of the signals a local command is usually ended by (os/exec ExitError text).
GO_SIGNALS = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated", signal.SIGINT: "interrupt",
              signal.SIGHUP: "hangup", signal.SIGPIPE: "broken pipe"}


def run_local(op: Operation, state: dict[str, Any], command: str) -> tuple[str, str]:
    """command@v1.2.1 local/commandOutputs.go run: `interpreter` (default /bin/sh -c) + the command, in `dir` or the
    plugin's working directory, with the plugin's environment, then `environment`, then the previous
    stdout/stderr as PULUMI_COMMAND_STDOUT/STDERR (addPreviousOutputInEnv, default true; only when non-empty)."""
    for key in ("assetPaths", "archivePaths"):
        if state.get(key) is not None:
            raise CommandError(f"the lab's pulumi-command stand-in collects no assets (local.Command {key})")
    args = [*(plain(state.get("interpreter")) or ["/bin/sh", "-c"]), command]
    env = dict(os.environ)  # os/exec dedupEnv: a later duplicate wins, as a dict update does
    env.update(plain(state.get("environment")) or {})
    if state.get("addPreviousOutputInEnv") in (None, True):
        for key, field in (("PULUMI_COMMAND_STDOUT", "stdout"), ("PULUMI_COMMAND_STDERR", "stderr")):
            if plain(state.get(field)):
                env[key] = plain(state[field])
    stdin = plain(state.get("stdin"))
    try:
        process = subprocess.Popen(args, cwd=plain(state.get("dir")) or os.getcwd(), env=env,
                                   stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:  # exec.Cmd.Start: "fork/exec PATH: ..." (or "chdir DIR: ...")
        raise CommandError(f"fork/exec {args[0]}: {e.strerror.lower() if e.strerror else e}") from None
    code, text = _capture(op, process, stdin, state.get("logging"))
    if code != 0:
        # fmt.Errorf("%w: running %q:\n%s", err, command, stdouterrbuf.String()) with exec.ExitError's text
        status = f"exit status {code}" if code > 0 else \
            f"signal: {GO_SIGNALS.get(signal.Signals(-code), signal.Signals(-code).name)}"
        raise CommandError(f"{status}: running {go_quote(command)}:\n{text['both']}")
    return text["stdout"].removesuffix("\n"), text["stderr"].removesuffix("\n")


def _capture(op: Operation, process: subprocess.Popen, stdin: str | None,
             logging: str | None) -> tuple[int, dict[str, str]]:
    """Feed stdin, collect stdout, stderr and both interleaved (stdouterrbuf), log lines as upstream does."""
    log_stdout = logging in (None, "stdout", "stdoutAndStderr")  # Logging.ShouldLogStdout (remote/ and local/logging.go)
    log_stderr = logging in (None, "stderr", "stdoutAndStderr")
    lock = threading.Lock()
    buffers: dict[str, list[bytes]] = {"stdout": [], "stderr": [], "both": []}

    def pump(stream, name: str, log: bool) -> None:
        for line in iter(stream.readline, b""):
            with lock:
                buffers[name].append(line)
                buffers["both"].append(line)
            if log:  # util.LogOutput: each line as an Info status (bufio.Scanner drops the \n and a \r before it)
                op.log(engine_pb2.INFO, line.decode("utf-8", "replace").rstrip("\n").removesuffix("\r"),
                       ephemeral=True)

    pumps = [threading.Thread(target=pump, args=(process.stdout, "stdout", log_stdout), daemon=True),
             threading.Thread(target=pump, args=(process.stderr, "stderr", log_stderr), daemon=True)]
    for t in pumps:
        t.start()
    if stdin:  # session.Stdin only when stdin is set and non-empty
        try:
            process.stdin.write(stdin.encode())
            process.stdin.close()
        except BrokenPipeError:
            pass
    for t in pumps:
        t.join()
    code = process.wait()
    return code, {k: b"".join(v).decode("utf-8", "replace") for k, v in buffers.items()}


# ---- the gRPC server ----------------------------------------------------------------------------------------------

def _name_of(urn: str) -> str:
    return urn.split("::")[-1]


class CommandProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, engine_address: str | None):
        self.cancelled = threading.Event()
        self.engine = engine_pb2_grpc.EngineStub(grpc.insecure_channel(engine_address)) if engine_address else None

    # -- helpers --
    def log(self, severity: int, message: str, urn: str, ephemeral: bool) -> None:
        """go-provider@v1.3.0 logging.go hostSink → HostClient.log (sdk go/pulumi/provider/host.go): the engine's
        Log RPC; LogStatus is Log with ephemeral=true."""
        if self.engine is None:
            return
        try:
            self.engine.Log(engine_pb2.LogRequest(severity=severity, message=message, urn=urn, ephemeral=ephemeral))
        except grpc.RpcError:
            print(f"[{urn}] {message}", file=sys.stderr)

    @staticmethod
    def _token(urn: str, context) -> str:
        typ = urn.split("::")[-2].split("$")[-1] if "::" in urn else ""
        if typ not in (TOKEN, LOCAL_TOKEN):
            # go-provider@v1.3.0 middleware/dispatch/dispatch.go answers NotFound "Resource '%s' not found" for a
            # token it does not serve; upstream serves CopyToRemote, CopyFile too: the stand-in does not.
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Resource '{typ}' not found: the lab's pulumi-command stand-in "
                          f"(tests/lab/standins/command_provider.py) implements {TOKEN} and {LOCAL_TOKEN} only")
        return typ

    @staticmethod
    def _runner(token: str) -> tuple[tuple[str, ...], Callable[[Operation, dict[str, Any], str], tuple[str, str]]]:
        return (LOCAL_INPUT_KEYS, run_local) if token == LOCAL_TOKEN else (INPUT_KEYS, run_command)

    # -- plugin --
    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=VERSION)  # go-provider@v1.3.0 provider.go GetPluginInfo

    def Handshake(self, request, context):
        # go-provider@v1.3.0 does not implement Handshake: the engine falls back to Configure (provider_plugin.go).
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Handshake is not implemented")

    def GetSchema(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "GetSchema is not implemented by the lab's stand-in")

    def CheckConfig(self, request, context):
        # infer.Provider without Config: CheckConfig/DiffConfig are WithDefaults' nyi (go-provider@v1.3.0
        # provider.go WithDefaults, infer/provider.go Wrap), which the engine treats as "no provider config".
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "CheckConfig is not implemented")

    def DiffConfig(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "DiffConfig is not implemented")

    def Configure(self, request, context):
        # go-provider@v1.3.0 provider.go Configure
        return provider_pb2.ConfigureResponse(acceptSecrets=True, supportsPreview=True, acceptResources=True,
                                              acceptOutputs=True)

    def Cancel(self, request, context):
        self.cancelled.set()
        return empty_pb2.Empty()

    # -- resources --
    def Check(self, request, context):
        inputs, failures = check(to_map(request.news), self._token(request.urn, context))
        return provider_pb2.CheckResponse(
            inputs=to_struct(inputs),
            failures=[provider_pb2.CheckFailure(property=p, reason=r) for p, r in failures])

    def Diff(self, request, context):
        input_keys, _ = self._runner(self._token(request.urn, context))
        # old inputs: the engine sends them (Configure's sendsOldInputs), infer uses them (RunInfo.SupportsOldInputs)
        old_inputs = to_map(request.old_inputs) if request.HasField("old_inputs") else None
        return diff(to_map(request.olds), to_map(request.news), old_inputs, list(request.ignoreChanges), input_keys)

    def Create(self, request, context):
        """command@v1.2.1 remote/commandController.go Create; go-provider@v1.3.0 infer/resource.go Create (+ MarkMap:
        during preview, outputs that do not mirror an input are unknown)."""
        input_keys, runner = self._runner(self._token(request.urn, context))
        inputs = to_map(request.properties)
        state = {k: v for k, v in inputs.items() if k in input_keys}
        resource_id = _name_of(request.urn) + secrets.token_hex(4)  # resource.NewUniqueHex(name, 8, 0)
        if request.preview:
            return provider_pb2.CreateResponse(id=resource_id,
                                               properties=to_struct({**state, "stdout": UNKNOWN, "stderr": UNKNOWN}))
        stdout = stderr = ""
        create = plain(state.get("create"))
        if create is not None:
            op = Operation(self, request.urn, request.timeout)
            try:
                stdout, stderr = runner(op, state, create)
            except CommandError as e:
                context.abort(grpc.StatusCode.UNKNOWN, str(e))
        return provider_pb2.CreateResponse(id=resource_id,
                                           properties=to_struct({**state, "stdout": stdout, "stderr": stderr}))

    def Update(self, request, context):
        """command@v1.2.1 remote/commandController.go Update: `update` if set, else `create`, with the previous
        stdout/stderr in the state (for PULUMI_COMMAND_*); go-provider@v1.3.0 infer/resource.go Update."""
        input_keys, runner = self._runner(self._token(request.urn, context))
        olds = to_map(request.olds)
        news = {k: v for k, v in to_map(request.news).items() if k in input_keys}
        for key in request.ignoreChanges:
            if key in olds:
                news[key] = olds[key]
        state = {**news, "stdout": olds.get("stdout", ""), "stderr": olds.get("stderr", "")}
        if request.preview:
            # markComputed: an output that mirrors no input is unknown when an input is unknown or changed
            changed = any(contains_unknowns(v) or (k in olds and not deep_equals(v, olds[k]))
                          for k, v in news.items())
            if changed:
                state.update(stdout=UNKNOWN, stderr=UNKNOWN)
            return provider_pb2.UpdateResponse(properties=to_struct(state))
        command = plain(news.get("update")) if news.get("update") is not None else plain(news.get("create"))
        if command is not None:
            op = Operation(self, request.urn, request.timeout)
            try:
                state["stdout"], state["stderr"] = runner(op, state, command)
            except CommandError as e:
                context.abort(grpc.StatusCode.UNKNOWN, str(e))
        return provider_pb2.UpdateResponse(properties=to_struct(state))

    def Delete(self, request, context):
        """command@v1.2.1 remote/commandController.go Delete: `delete` if set, with the state's stdout/stderr."""
        _, runner = self._runner(self._token(request.urn, context))
        state = to_map(request.properties)
        if state.get("delete") is not None:
            op = Operation(self, request.urn, request.timeout)
            try:
                runner(op, state, plain(state["delete"]))
            except CommandError as e:
                context.abort(grpc.StatusCode.UNKNOWN, str(e))
        return empty_pb2.Empty()

    def Read(self, request, context):
        # Command has no CustomRead: go-provider@v1.3.0 infer/resource.go Read returns id, state and inputs as
        # they are, so a refresh changes nothing.
        self._token(request.urn, context)
        return provider_pb2.ReadResponse(id=request.id, properties=request.properties, inputs=request.inputs)


def parse_args(argv: list[str]) -> str | None:
    """Plugin arguments (sdk@v3.274.1 go/common/resource/plugin/plugin.go buildPluginArguments): optional
    --logtostderr, -v=N, --tracing ADDR, then the engine's address."""
    positional, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--tracing":
            skip = True
        elif not arg.startswith("-"):
            positional.append(arg)
    return positional[-1] if positional else None


def serve(argv: list[str]) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=128),
                         options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)])
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(CommandProvider(parse_args(argv)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # The handshake: the port, alone on the first line of stdout (plugin.go parsePort).
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1)
    # Not waiting for in-flight calls (their ssh children die with this process, PR_SET_PDEATHSIG), as the engine's
    # kill of the upstream plugin drops its connections.
    os._exit(0)


def lab_env(env: dict[str, str]) -> dict[str, str]:
    """`env` for a Pulumi CLI that should start this stand-in as `pulumi-resource-command`: its bin dir first on
    PATH and ambient plugins allowed. The engine takes a plugin found on $PATH whatever the version asked
    (sdk@v3.274.1 go/common/workspace/plugins.go getPluginInfoAndPath: an ambient plugin wins over the plugin
    cache and carries no version) and warns "using pulumi-resource-command from $PATH at …"."""
    out = {**env, "PULUMI_IGNORE_AMBIENT_PLUGINS": "false"}
    out["PATH"] = os.pathsep.join([str(BIN_DIR), *[p for p in env.get("PATH", "").split(os.pathsep)
                                                   if p and p != str(BIN_DIR)]])
    return out


if __name__ == "__main__":
    serve(sys.argv[1:])
