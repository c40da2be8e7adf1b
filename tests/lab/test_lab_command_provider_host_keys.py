"""The pulumi-command stand-in's host key check and its command:local:Command, against pulumi-command v1.2.1
(provider/pkg/provider/remote/connection.go connectionBase.SSHConfig, local/commandOutputs.go run) and
golang.org/x/crypto v0.48.0 (ssh/keys.go ParseAuthorizedKey, ssh/handshake.go: a client sends its
HostKeyAlgorithms as they are). No lab namespaces: a private sshd on 127.0.0.1 (test_command_provider.py)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "standins"))
import command_provider as cp  # noqa: E402
from test_command_provider import Sshd, needs_sshd, run, sshd  # noqa: E402,F401  (sshd: the module's fixture)


@pytest.fixture(scope="module")
def rsa_sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("rsa-sshd"), host_key_type="rsa")
    yield server
    server.stop()


@needs_sshd
def test_an_empty_host_key_is_parsed_and_refused_not_ignored(sshd):
    # `if con.HostKey != nil`: "" is a key to parse, and ParseAuthorizedKey finds none
    with pytest.raises(cp.CommandError, match=r"failed to parse host key: ssh: no key found$"):
        run(sshd, "true", connection={"hostKey": "", "dialErrorLimit": 0})


@needs_sshd
def test_the_key_type_comes_from_the_key_not_from_the_text(sshd):
    # parseAuthorizedKey decodes the base64 and takes the type from the key; the first field is not read
    mislabelled = "ecdsa-sha2-nistp256 " + sshd.host_key.split()[1]
    (stdout, _), _ = run(sshd, "echo matched", connection={"hostKey": mislabelled})
    assert stdout == "matched"


@needs_sshd
def test_a_pinned_rsa_key_offers_only_sha1_ssh_rsa_which_openssh_refuses(rsa_sshd):
    """HostKeyAlgorithms = []string{publicKey.Type()} = ["ssh-rsa"]; OpenSSH >= 8.8 offers only rsa-sha2-*."""
    with pytest.raises(cp.CommandError) as caught:
        run(rsa_sshd, "true", connection={"hostKey": rsa_sshd.host_key, "dialErrorLimit": 0})
    assert str(caught.value) == ("after 0 failed attempts: ssh: handshake failed: ssh: no common algorithm for host "
                                 "key; we offered: [ssh-rsa], peer offered: [rsa-sha2-512 rsa-sha2-256]")


def run_local(command: str, **state) -> tuple[str, str]:
    class Provider:
        cancelled = threading.Event()

        def log(self, severity, message, urn, ephemeral):
            pass

    return cp.run_local(cp.Operation(Provider(), "urn:pulumi:dev::p::command:local:Command::c"), state, command)


def test_local_command_gets_environment_and_the_previous_stdout():
    stdout, _ = run_local('echo "$FOO/$PULUMI_COMMAND_STDOUT"', environment={"FOO": "foo"}, stdout="before")
    assert stdout == "foo/before"
    stdout, _ = run_local('echo "${PULUMI_COMMAND_STDOUT-unset}"', stdout="before", addPreviousOutputInEnv=False)
    assert stdout == "unset"


def test_local_command_runs_with_the_interpreter_given():
    stdout, _ = run_local("echo $BASH_VERSION", interpreter=["/bin/bash", "-c"])
    assert stdout and stdout != "\n"


def test_a_failing_local_command_reports_gos_exit_status_the_command_and_its_output():
    with pytest.raises(cp.CommandError) as caught:
        run_local("echo out; exit 4")
    assert str(caught.value) == 'exit status 4: running "echo out; exit 4":\nout\n'


def test_local_assets_are_refused():
    with pytest.raises(cp.CommandError, match="collects no assets"):
        run_local("true", assetPaths=["*"])


def test_check_accepts_a_local_command_without_a_connection():
    inputs, failures = cp.check({"create": "true", "interpreter": ["/bin/bash", "-c"], "unknownKey": 1},
                                cp.LOCAL_TOKEN)
    assert failures == [] and inputs == {"create": "true", "interpreter": ["/bin/bash", "-c"]}
