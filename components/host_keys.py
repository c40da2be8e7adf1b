"""SSH trust on first use: each host's key captured once, kept in the stack state, then pinned as
`host_key` in every connection to that host (pulumi-command checks it with ssh.FixedHostKey).

Per host two `command` resources:
- a scan: `ssh-keyscan` from where `pulumi` runs (the bastion, nodes reached directly), or on the
  bastion for nodes behind it (over a connection that checks the bastion's key; that is the path
  pulumi-command's own connections to the node take: a TCP dial from the bastion). No credential is
  used: the SSH private key never reaches a local command.
- the record, a local command whose output is the host key. Created from the scan; on any later run
  (its inputs changed: a new scan, a new bastion) it hands back the key it recorded
  (PULUMI_COMMAND_STDOUT) and fails, naming the host and how to accept, if the scan differs.
Both are replaced, recording the key anew, only when the host's address, port or `hostKeyRevision`
changes. A pinned `hostKey` wins (no scan); `ssh.insecureIgnoreHostKeys` turns recording off.
"""

from __future__ import annotations

import pulumi
from pulumi_command import local, remote

from components.config import Node
from components.remote import BASTION_RESOURCE_NAME, Context, KnownHosts
from components.scripts import ParamValue, remote_command, render

# The rendered scripts are bash; pulumi-command's default interpreter is /bin/sh -c.
INTERPRETER = ["/bin/bash", "-c"]


class HostKeys(pulumi.ComponentResource):
    """The recorded host keys of the bastion and of every node that has no pinned `hostKey`."""

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:HostKeys", "host-keys", None, opts)
        ssh = ctx.spec.ssh
        self.known_hosts = KnownHosts()
        if ssh.insecure_ignore_host_keys:
            self.register_outputs({})
            return
        bastion_key: pulumi.Input[str] | None = None
        if ssh.bastion is not None:
            bastion_key = ssh.bastion.host_key or self._record(
                BASTION_RESOURCE_NAME, "the bastion", ssh.bastion.host, ssh.bastion.port, ssh.bastion.host_key_revision,
                "raise ssh.bastion.hostKeyRevision (any new value) or pin the key in ssh.bastion.hostKey, "
                "then run pulumi up again.", None)
        via_bastion = ctx.with_known_hosts(KnownHosts(bastion=bastion_key)) if ssh.bastion is not None else None
        nodes = {node.name: self._record(node.name, f"node {node.name}", node.address, node.port,
                                         node.host_key_revision, _accept(node), via_bastion)
                 for node in ctx.spec.nodes if node.host_key is None}
        self.known_hosts = KnownHosts(nodes=nodes, bastion=bastion_key)
        self.register_outputs({"nodes": nodes, "bastion": bastion_key})

    def _record(self, name: str, what: str, host: str, port: int, revision: str, accept: str,
                via_bastion: Context | None) -> pulumi.Output[str]:
        # A new address, port or revision is a first contact: both are replaced and the key recorded anew.
        triggers = [host, port, revision]
        scan_script = render("host-key-scan.sh", {"WHAT": what, "HOST": host, "PORT": port})
        if via_bastion is None:
            scan = local.Command(
                f"{name}-host-key-scan", create=scan_script, interpreter=INTERPRETER, triggers=triggers,
                logging=local.Logging.STDERR, opts=pulumi.ResourceOptions(parent=self))
        else:
            scan = remote.Command(
                f"{name}-host-key-scan", connection=via_bastion.bastion_connection(),
                create=remote_command(scan_script, use_sudo=False), triggers=triggers,
                logging=remote.Logging.STDERR, add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self))
        params: dict[str, ParamValue] = {"WHAT": what, "ENDPOINT": f"{host}:{port}", "ACCEPT": accept}
        record = local.Command(
            f"{name}-host-key", create=render("host-key-record.sh", params), interpreter=INTERPRETER,
            environment={"SCANNED_HOST_KEY": scan.stdout}, triggers=triggers, logging=local.Logging.NONE,
            # The recorded key comes back as PULUMI_COMMAND_STDOUT on every later run (the default, explicit).
            add_previous_output_in_env=True,
            opts=pulumi.ResourceOptions(parent=self))
        return record.stdout


def _accept(node: Node) -> str:
    return (f"raise hostKeyRevision of node {node.name} (nodes[].hostKeyRevision, any new value) or pin the key "
            "in its nodes[].hostKey, then run pulumi up again.")
