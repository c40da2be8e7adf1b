"""The pulumi-command stand-in (tests/lab/standins/command_provider.py): its answers over the provider gRPC protocol
as pulumi-command v1.2.1 / pulumi-go-provider v1.3.0 give them, its commands over real SSH (a private sshd on
127.0.0.1), and the real Pulumi engine driving it (preview, up, replace, destroy), asserted from the engine's
own events. No lab namespaces: these run wherever sshd and the toolchain are."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent / "standins"))
import command_provider as cp  # noqa: E402

from tests import toolchain  # noqa: E402

PLUGIN = cp.BIN_DIR / "pulumi-resource-command"
URN = "urn:pulumi:dev::p::command:remote:Command::node"


def secret(v):
    return cp.make_secret(v)


# ---- the plugin over gRPC ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plugin():
    process = subprocess.Popen([str(PLUGIN)], stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield provider_pb2_grpc.ResourceProviderStub(channel)
    channel.close()
    process.terminate()
    process.wait(timeout=10)


def checked(plugin, news: dict) -> dict:
    response = plugin.Check(provider_pb2.CheckRequest(urn=URN, news=cp.to_struct(news)))
    assert not response.failures, response.failures
    return cp.to_map(response.inputs)


def diff(plugin, old_inputs: dict, news: dict, ignore_changes=()) -> provider_pb2.DiffResponse:
    olds = {**old_inputs, "stdout": "out", "stderr": ""}
    return plugin.Diff(provider_pb2.DiffRequest(urn=URN, id="node1234", olds=cp.to_struct(olds),
                                                news=cp.to_struct(news), old_inputs=cp.to_struct(old_inputs),
                                                ignoreChanges=list(ignore_changes)))


BASE = {"create": "echo created", "delete": "echo deleted",
        "connection": secret({"host": "10.0.0.1", "privateKey": secret("KEY")})}


def test_plugin_info_is_the_version_the_sdk_asks_for(plugin):
    assert plugin.GetPluginInfo(empty_pb2.Empty()).version == "1.2.1"


def test_configure_accepts_secrets_and_supports_preview(plugin):
    response = plugin.Configure(provider_pb2.ConfigureRequest(acceptSecrets=True, sends_old_inputs=True,
                                                              sends_old_inputs_to_delete=True))
    assert (response.acceptSecrets, response.supportsPreview, response.acceptResources) == (True, True, True)


def test_check_applies_connection_defaults_and_keeps_the_connection_secret(plugin):
    inputs = checked(plugin, {**BASE, "connection": {"host": "10.0.0.1", "privateKey": "KEY",
                                                     "proxy": {"host": "10.0.0.9"}}, "unknownKey": 1})
    assert cp.is_secret(inputs["connection"])
    conn = inputs["connection"]["value"]
    assert {k: conn[k] for k in ("user", "port", "dialErrorLimit", "perDialTimeout")} == {
        "user": "root", "port": 22, "dialErrorLimit": 10, "perDialTimeout": 15}
    assert conn["privateKey"] == secret("KEY")
    assert conn["proxy"]["user"] == "root" and conn["proxy"]["port"] == 22
    assert "unknownKey" not in inputs


def test_check_names_a_connection_without_host(plugin):
    response = plugin.Check(provider_pb2.CheckRequest(urn=URN, news=cp.to_struct({"connection": {"user": "x"}})))
    assert [(f.property, f.reason) for f in response.failures] == [
        ("connection.host", "Missing required field 'host' on 'remote.Connection'")]


def test_no_change_is_no_diff(plugin):
    inputs = checked(plugin, BASE)
    response = diff(plugin, inputs, checked(plugin, BASE))
    assert response.changes == provider_pb2.DiffResponse.DIFF_NONE and not response.diffs


def test_a_create_change_is_an_update(plugin):
    inputs = checked(plugin, BASE)
    response = diff(plugin, inputs, checked(plugin, {**BASE, "create": "echo again"}))
    assert response.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(response.diffs) == ["create"] and not response.replaces
    assert response.detailedDiff["create"].kind == provider_pb2.PropertyDiff.UPDATE


def test_adding_triggers_is_a_replace_and_the_provider_leaves_delete_before_replace_to_the_engine(plugin):
    inputs = checked(plugin, BASE)
    response = diff(plugin, inputs, checked(plugin, {**BASE, "triggers": ["v1"]}))
    assert list(response.replaces) == ["triggers"]
    assert response.detailedDiff["triggers"].kind == provider_pb2.PropertyDiff.ADD_REPLACE
    assert response.deleteBeforeReplace is False


def test_a_changed_trigger_element_is_an_update_for_the_provider(plugin):
    """go-provider looks replaceOnChanges up by the whole path (`triggers[0]`), so it answers update; the SDK's
    replace_on_changes=["triggers[*]"] makes the engine replace
    (test_engine_runs_up_replace_with_delete_first_and_destroy_over_ssh)."""
    inputs = checked(plugin, {**BASE, "triggers": ["v1"]})
    response = diff(plugin, inputs, checked(plugin, {**BASE, "triggers": ["v2"]}))
    assert list(response.diffs) == ["triggers"] and not response.replaces
    assert response.detailedDiff["triggers[0]"].kind == provider_pb2.PropertyDiff.UPDATE


def test_a_changed_key_in_the_secret_connection_is_one_update_of_connection(plugin):
    inputs = checked(plugin, BASE)
    news = checked(plugin, {**BASE, "connection": secret({"host": "10.0.0.1", "privateKey": secret("KEY2")})})
    response = diff(plugin, inputs, news)
    assert dict(response.detailedDiff) == {"connection": provider_pb2.PropertyDiff(kind=provider_pb2.PropertyDiff.UPDATE)}


def test_ignore_changes_takes_the_value_from_the_state(plugin):
    inputs = checked(plugin, BASE)
    response = diff(plugin, inputs, checked(plugin, {**BASE, "create": "echo again"}), ignore_changes=["create"])
    assert response.changes == provider_pb2.DiffResponse.DIFF_NONE


def test_preview_create_connects_nowhere_and_leaves_stdout_unknown(plugin):
    inputs = checked(plugin, BASE)
    response = plugin.Create(provider_pb2.CreateRequest(urn=URN, properties=cp.to_struct(inputs), preview=True))
    props = cp.to_map(response.properties)
    assert (props["stdout"], props["stderr"]) == (cp.UNKNOWN, cp.UNKNOWN)
    assert props["create"] == "echo created" and cp.is_secret(props["connection"])
    assert response.id.startswith("node") and len(response.id) == len("node") + 8


def test_other_command_resources_are_refused_by_name(plugin):
    with pytest.raises(grpc.RpcError) as caught:
        plugin.Check(provider_pb2.CheckRequest(urn="urn:pulumi:dev::p::command:remote:CopyToRemote::x",
                                               news=cp.to_struct({})))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "command:remote:CopyToRemote" in caught.value.details() and "stand-in" in caught.value.details()


def test_failure_message_quotes_the_command_as_go_does():
    assert cp.go_quote('echo "a"\n\tb\\') == '"echo \\"a\\"\\n\\tb\\\\"'


def test_lab_env_puts_the_stand_in_first_and_allows_ambient_plugins():
    env = cp.lab_env({"PATH": "/usr/bin", "PULUMI_IGNORE_AMBIENT_PLUGINS": "true"})
    assert env["PATH"].split(os.pathsep)[0] == str(cp.BIN_DIR)
    assert env["PULUMI_IGNORE_AMBIENT_PLUGINS"] == "false"


# ---- a private sshd --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs: bound but not listening, so a
    connection gets a reset, and no other process (the other lab stream's, say) can take it meanwhile, as it could
    take a port found free and let go."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def free_port() -> int:
    """A loopback port free a moment ago (for a server of our own to bind: Sshd checks that it did)."""
    with refused_port() as port:
        return port


class Sshd:
    def __init__(self, tmp: Path, host_key_type: str = "ed25519"):
        self.tmp = tmp
        subprocess.run(["ssh-keygen", "-q", "-t", host_key_type, "-N", "", "-f", str(tmp / "host")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "user")], check=True)
        shutil.copy(tmp / "user.pub", tmp / "authorized_keys")
        self.key = (tmp / "user").read_text()
        self.host_key = " ".join((tmp / "host.pub").read_text().split()[:2])
        Path("/run/sshd").mkdir(exist_ok=True)
        # A port found free can be taken before sshd binds it (by the other lab stream's processes, say): sshd then
        # exits, and another port is tried. Listening is known from sshd's own log line, not from a connection,
        # which whoever took the port would accept too.
        for _ in range(5):
            self.port = free_port()
            if self.start():
                return
        raise RuntimeError((tmp / "sshd.log").read_text())

    def start(self) -> bool:
        """Whether sshd listens on self.port (else it has exited)."""
        tmp = self.tmp
        # Debian's AcceptEnv, the rest what a private server on a high port needs.
        (tmp / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host'}\nPidFile {tmp / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nAcceptEnv LANG LC_*\n")
        with (tmp / "sshd.log").open("w") as log:
            self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(tmp / "sshd_config")],
                                            stdout=subprocess.DEVNULL, stderr=log)
        listening = f"Server listening on 127.0.0.1 port {self.port}."  # sshd.c listen_on_addrs, logit (INFO)
        for _ in range(200):
            if listening in (tmp / "sshd.log").read_text():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        self.stop()
        return False

    def connection(self, **extra) -> dict:
        return {"host": "127.0.0.1", "port": self.port, "user": os.environ.get("USER", "root"),
                "privateKey": self.key, **extra}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def sshd_reason() -> str | None:
    if not Path("/usr/sbin/sshd").exists() or not shutil.which("ssh"):
        return "needs OpenSSH's sshd and ssh"
    if os.geteuid() != 0:
        return "needs root (sshd for the current user on a high port)"
    return None


needs_sshd = pytest.mark.skipif(sshd_reason() is not None, reason=sshd_reason() or "")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


def run(sshd, command: str, **state):
    state = {"connection": cp.check({"connection": sshd.connection(**state.pop("connection", {}))})[0]["connection"],
             **state}
    logs: list[tuple[int, str, bool]] = []

    class Provider:
        cancelled = threading.Event()

        def log(self, severity, message, urn, ephemeral):
            logs.append((severity, message, ephemeral))

    op = cp.Operation(Provider(), URN)
    return cp.run_command(op, state, command), logs


@needs_sshd
def test_command_runs_over_ssh_with_stdin_and_one_trailing_newline_trimmed(sshd):
    (stdout, stderr), logs = run(sshd, "cat; echo err >&2; echo", stdin="line1\nline2\n")
    assert (stdout, stderr) == ("line1\nline2\n", "err")
    # each output line as an ephemeral (status) log; stdout and stderr interleave as they come
    assert sorted(m for _, m, ephemeral in logs if ephemeral) == ["", "err", "line1", "line2"]


@needs_sshd
def test_logging_none_logs_no_output_line(sshd):
    _, logs = run(sshd, "echo secret-value", logging="none")
    assert not any("secret-value" in m for _, m, _ in logs)


@needs_sshd
def test_a_failing_command_reports_status_command_and_output(sshd):
    with pytest.raises(cp.CommandError) as caught:
        run(sshd, "echo out; echo err >&2; exit 3")
    text = str(caught.value)
    assert text.startswith('Process exited with status 3: running "echo out; echo err >&2; exit 3":\n')
    assert sorted(text.split(":\n", 1)[1].splitlines()) == ["err", "out"]


@needs_sshd
def test_environment_outside_acceptenv_is_refused_with_upstreams_error(sshd):
    with pytest.raises(cp.CommandError, match=r'^could not set environment variable "FOO": ssh: setenv failed$'):
        run(sshd, "true", environment={"FOO": "1"})


@needs_sshd
def test_environment_inside_acceptenv_reaches_the_command(sshd):
    (stdout, _), _ = run(sshd, "echo $LC_LAB", environment={"LC_LAB": "kept"})
    assert stdout == "kept"


@needs_sshd
def test_previous_output_in_env_is_refused_by_stock_sshd_with_a_warning(sshd):
    (stdout, _), logs = run(sshd, "echo ${PULUMI_COMMAND_STDOUT:-unset}", stdout="before")
    assert stdout == "unset"
    assert any(sev == cp.engine_pb2.WARNING and "Unable to set 'PULUMI_COMMAND_STDOUT'" in m for sev, m, _ in logs)


@needs_sshd
def test_pinned_host_key_is_checked(sshd):
    (stdout, _), _ = run(sshd, "echo pinned", connection={"hostKey": sshd.host_key})
    assert stdout == "pinned"
    other = subprocess.run(["ssh-keygen", "-y", "-f", str(sshd.tmp / "user")], capture_output=True, text=True).stdout
    with pytest.raises(cp.CommandError, match=r"^after 0 failed attempts: ssh: handshake failed: ssh: host key mismatch"):
        run(sshd, "true", connection={"hostKey": other.strip(), "dialErrorLimit": 0})


@needs_sshd
def test_dial_retries_up_to_the_limit_then_names_the_endpoint(sshd):
    with refused_port() as port, pytest.raises(cp.CommandError) as caught:
        started = time.monotonic()
        run(sshd, "true", connection={"port": port, "dialErrorLimit": 2})
    assert str(caught.value) == f"after 2 failed attempts: dial tcp 127.0.0.1:{port}: connect: connection refused"
    assert time.monotonic() - started >= 0.25  # 100 ms + 150 ms between the three dials


@needs_sshd
def test_a_proxy_connection_goes_through_the_bastion(sshd):
    (stdout, _), _ = run(sshd, "echo via-bastion", connection={"proxy": sshd.connection()})
    assert stdout == "via-bastion"


@needs_sshd
def test_a_bastion_that_is_down_fails_prefixed_proxy(sshd):
    with refused_port() as port, \
            pytest.raises(cp.CommandError, match=rf"^proxy: after 0 failed attempts: dial tcp 127.0.0.1:{port}: "):
        run(sshd, "true", connection={"proxy": {**sshd.connection(port=port), "dialErrorLimit": 0}})


def grpc_state(sshd, **inputs) -> dict:
    return cp.check({"connection": sshd.connection(**inputs.pop("connection", {})), **inputs})[0]


@needs_sshd
def test_update_runs_update_else_create(plugin, sshd):
    olds = {**grpc_state(sshd, create="echo c", update="echo u"), "stdout": "", "stderr": ""}
    for news, expected in ((grpc_state(sshd, create="echo c2", update="echo u2"), "u2"),
                           (grpc_state(sshd, create="echo c2"), "c2")):
        response = plugin.Update(provider_pb2.UpdateRequest(urn=URN, id="node1", olds=cp.to_struct(olds),
                                                            news=cp.to_struct(news), old_inputs=cp.to_struct(olds)))
        assert cp.to_map(response.properties)["stdout"] == expected


@needs_sshd
def test_delete_without_a_delete_command_connects_nowhere(plugin, sshd):
    with refused_port() as port:
        state = {**grpc_state(sshd, create="echo c", connection={"port": port, "dialErrorLimit": 0}),
                 "stdout": "", "stderr": ""}
        plugin.Delete(provider_pb2.DeleteRequest(urn=URN, id="node1", properties=cp.to_struct(state)))
        with pytest.raises(grpc.RpcError, match="connection refused"):
            plugin.Delete(provider_pb2.DeleteRequest(urn=URN, id="node1",
                                                     properties=cp.to_struct({**state, "delete": "echo d"})))


def test_cancel_ends_the_dial_retries():
    process = subprocess.Popen([str(PLUGIN)], stdout=subprocess.PIPE, text=True)
    try:
        plugin_port = int(process.stdout.readline())
        with refused_port() as port:
            stub = provider_pb2_grpc.ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{plugin_port}"))
            inputs = cp.check({"create": "true", "connection": {"host": "127.0.0.1", "port": port,
                                                                  "privateKey": "k", "dialErrorLimit": -1}})[0]
            call = stub.Create.future(provider_pb2.CreateRequest(urn=URN, properties=cp.to_struct(inputs)))
            time.sleep(1)
            assert not call.done()  # -1: unlimited retries
            stub.Cancel(empty_pb2.Empty())
            with pytest.raises(grpc.RpcError, match="context canceled"):
                call.result(timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---- the real engine -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine_env():
    try:
        env = toolchain.env(build=True)
    except toolchain.ToolchainUnavailable:
        env = None
    if env is None or not shutil.which("pulumi", path=env.get("PATH")):
        pytest.skip("the toolchain (toolchain/build) did not build the Pulumi CLI")
    return env


def stack(tmp_path: Path, env: dict[str, str], program):
    from pulumi import automation as auto

    backend = tmp_path / "state"
    backend.mkdir(exist_ok=True)
    lab = cp.lab_env(env)
    env_vars = {k: lab[k] for k in ("PATH", "PULUMI_IGNORE_AMBIENT_PLUGINS", "PULUMI_SKIP_UPDATE_CHECK",
                                    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION")}
    env_vars["PULUMI_CONFIG_PASSPHRASE"] = "test-passphrase"
    cli = auto.PulumiCommand(root=str(Path(shutil.which("pulumi", path=env["PATH"])).parent.parent),
                             skip_version_check=True)
    return auto.create_or_select_stack(
        stack_name="dev", project_name="cmdtest", program=program,
        opts=auto.LocalWorkspaceOptions(
            pulumi_home=env["PULUMI_HOME"], env_vars=env_vars, pulumi_command=cli, work_dir=str(tmp_path),
            project_settings=auto.ProjectSettings(name="cmdtest", runtime="python",
                                                  backend=auto.ProjectBackend(url=f"file://{backend}"))))


def command_program(connection: dict, triggers: list, delete_before_replace: bool = True,
                    create: str = "echo created-$RANDOM"):
    def program():
        import pulumi
        from pulumi_command import remote

        remote.Command("node", connection=remote.ConnectionArgs(**{
            {"privateKey": "private_key", "hostKey": "host_key", "dialErrorLimit": "dial_error_limit"}.get(k, k): v
            for k, v in connection.items()}),
            create=create, delete="echo deleted >&2", triggers=triggers, logging="stdoutAndStderr",
            opts=pulumi.ResourceOptions(delete_before_replace=delete_before_replace))
    return program


class Events:
    def __init__(self):
        self.all: list = []

    def __call__(self, event):
        self.all.append(event)

    def steps(self, kind: str = "res_outputs_event") -> list[tuple[str, str]]:
        out = []
        for e in self.all:
            payload = getattr(e, kind, None)
            if payload is not None and payload.metadata.type == "command:remote:Command":
                out.append((payload.metadata.op, payload.metadata.urn.split("::")[-1]))
        return out


def test_engine_preview_of_a_new_command_shows_create_with_its_script_and_connects_nowhere(tmp_path, engine_env):
    connection = {"host": "192.0.2.1", "port": 1, "privateKey": "not a key", "dialErrorLimit": 0}
    s = stack(tmp_path, engine_env, command_program(connection, ["v1"]))
    events = Events()
    result = s.preview(on_event=events, diff=True)
    assert events.steps("resource_pre_event") == [("create", "node")]
    assert "echo created-$RANDOM" in result.stdout
    pre = next(e.resource_pre_event for e in events.all if e.resource_pre_event
               and e.resource_pre_event.metadata.type == "command:remote:Command")
    assert pre.metadata.new.inputs["create"] == "echo created-$RANDOM"
    assert "not a key" not in result.stdout


def infos(events: Events) -> list[str]:
    """The command's output lines as the engine reported them (the provider's Log calls)."""
    return [e.diagnostic_event.message.strip() for e in events.all
            if e.diagnostic_event and e.diagnostic_event.severity == "info"]


@needs_sshd
def test_engine_runs_up_replace_with_delete_first_and_destroy_over_ssh(tmp_path, engine_env, sshd):
    connection = sshd.connection(hostKey=sshd.host_key)
    s = stack(tmp_path, engine_env, command_program(connection, ["v1"]))

    up = Events()
    s.up(on_event=up)
    assert up.steps("resource_pre_event") == [("create", "node")]
    assert [m for m in infos(up) if m.startswith("created-")]
    state = next((tmp_path / "state" / ".pulumi" / "stacks" / "cmdtest").glob("dev.json")).read_text()
    assert "created-" in state  # stdout is kept in the state
    assert "PRIVATE KEY" not in state  # the connection (and key) only encrypted

    again = Events()
    s.up(on_event=again)
    assert again.steps("resource_pre_event") == [("same", "node")]
    assert not infos(again)  # nothing ran

    s.workspace.program = command_program(connection, ["v2"])
    replace = Events()
    s.up(on_event=replace)
    # delete_before_replace: the engine deletes the old command (its `delete` runs) before the new one's `create`
    assert [op for op, _ in replace.steps("resource_pre_event")] == ["delete-replaced", "replace", "create-replacement"]
    lines = infos(replace)
    assert lines[0] == "deleted" and lines[1].startswith("created-")

    destroy = Events()
    s.destroy(on_event=destroy)
    assert destroy.steps("resource_pre_event") == [("delete", "node")]
    assert infos(destroy) == ["deleted"]


def test_engine_reports_a_host_that_is_down_by_its_address(tmp_path, engine_env):
    with refused_port() as port:
        connection = {"host": "127.0.0.1", "port": port, "privateKey": "k", "dialErrorLimit": 1}
        s = stack(tmp_path, engine_env, command_program(connection, ["v1"]))
        events = Events()
        with pytest.raises(Exception):
            s.up(on_event=events)
    errors = [e.diagnostic_event.message for e in events.all
              if e.diagnostic_event and e.diagnostic_event.severity == "error"]
    assert any(f"after 1 failed attempts: dial tcp 127.0.0.1:{port}: connect: connection refused" in m
               for m in errors), errors
    assert events.steps("res_op_failed_event") == [("create", "node")]


@needs_sshd
def test_engine_reports_a_failing_command_with_its_status_and_output(tmp_path, engine_env, sshd):
    s = stack(tmp_path, engine_env, command_program(sshd.connection(), ["v1"], create="echo no-good >&2; exit 3"))
    events = Events()
    with pytest.raises(Exception):
        s.up(on_event=events)
    errors = [e.diagnostic_event.message for e in events.all
              if e.diagnostic_event and e.diagnostic_event.severity == "error"]
    assert any('Process exited with status 3: running "echo no-good >&2; exit 3":\nno-good' in m for m in errors), errors
