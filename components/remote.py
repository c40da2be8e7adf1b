"""Building `pulumi_command.remote.Command`s for a node: connection, sudo wrapper, secret handling."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
from pulumi_command import remote

from components.config import ClusterSpec, Node
from components.scripts import ParamValue, remote_command, render


# The bastion's resources in components/host_keys.py: a name no node can have (node names are DNS labels).
BASTION_RESOURCE_NAME = "ssh.bastion"


@dataclass(frozen=True)
class KnownHosts:
    """Host keys recorded in the stack (components/host_keys.py), by node name; pinned hosts are absent."""

    nodes: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    bastion: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class Context:
    """What every phase needs besides its own inputs."""

    spec: ClusterSpec
    private_key: pulumi.Output[str] | None
    keepalived_auth_pass: pulumi.Output[str] | None = None
    known_hosts: KnownHosts = KnownHosts()

    def with_known_hosts(self, known_hosts: KnownHosts) -> "Context":
        return dataclasses.replace(self, known_hosts=known_hosts)

    def _bastion_host_key(self) -> pulumi.Input[str] | None:
        bastion = self.spec.ssh.bastion
        # A pinned key wins; None (no pin, nothing recorded: ssh.insecureIgnoreHostKeys) is not checked.
        return bastion.host_key or self.known_hosts.bastion if bastion is not None else None

    def bastion_connection(self) -> remote.ConnectionArgs:
        """A connection to the bastion itself (its host key scans of the nodes behind it)."""
        bastion = self.spec.ssh.bastion
        assert bastion is not None
        return remote.ConnectionArgs(host=bastion.host, port=bastion.port, user=bastion.user,
                                     private_key=self.private_key, host_key=self._bastion_host_key(),
                                     dial_error_limit=8, per_dial_timeout=15)

    def connection(self, node: Node) -> remote.ConnectionArgs:
        ssh = self.spec.ssh
        proxy = None
        if ssh.bastion is not None:
            proxy = remote.ProxyConnectionArgs(
                host=ssh.bastion.host,
                user=ssh.bastion.user,
                port=ssh.bastion.port,
                private_key=self.private_key,
                host_key=self._bastion_host_key(),
                agent_socket_path=None,
            )
        return remote.ConnectionArgs(
            host=node.address,
            port=node.port,
            user=node.user,
            private_key=self.private_key,
            host_key=node.host_key or self.known_hosts.nodes.get(node.name),
            proxy=proxy,
            # A node that is rebooting or slow to accept SSH gets about two minutes.
            dial_error_limit=8,
            per_dial_timeout=15,
        )


def node_script(template: str, params: Mapping[str, ParamValue], node: Node, includes: Sequence[str] = ()) -> str:
    """The command line for `template` on `node`, with sudo for non-root users."""
    return remote_command(render(template, params, includes), use_sudo=node.user != "root")


def node_command(
    name: str,
    ctx: Context,
    node: Node,
    *,
    create: str | None = None,
    update: str | None = None,
    delete: str | None = None,
    stdin: pulumi.Input[str] | None = None,
    secret_stdout: bool = False,
    triggers: Sequence[pulumi.Input] | None = None,
    opts: pulumi.ResourceOptions,
) -> remote.Command:
    """One step on one machine.

    `secret_stdout`: the script prints a secret (as its last action): stdout and stderr become
    secret outputs and stdout is not streamed to the CLI.
    `update` without `create`: a day-2 step that runs only when its inputs change; creating it
    connects nowhere (pulumi-command runs nothing for an absent create).
    """
    if secret_stdout:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            additional_secret_outputs=["stdout", "stderr"]))
    return remote.Command(
        name,
        connection=ctx.connection(node),
        create=create,
        update=update,
        delete=delete,
        stdin=stdin,
        triggers=list(triggers) if triggers is not None else None,
        logging=remote.Logging.STDERR if secret_stdout else remote.Logging.STDOUT_AND_STDERR,
        # The previous stdout may hold a secret; never hand it to the next run's environment.
        add_previous_output_in_env=False,
        opts=opts,
    )


def last_json_document(stdout: str, keys: Sequence[str], step: str) -> dict[str, str]:
    """The JSON document a step prints as its last line, with `keys` non-empty.

    Errors name what is missing, never the values: the document usually holds secrets.
    """
    try:
        document = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise ValueError(f"the {step} step did not print its JSON document") from None
    missing = [key for key in keys if not document.get(key)]
    if missing:
        raise ValueError(f"the {step} document lacks {', '.join(missing)}")
    return {key: document[key] for key in keys}
