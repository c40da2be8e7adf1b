"""Scheduled etcd backups (etcd.backup): a systemd timer on every etcd member — each stacked control
plane, or each external etcd node — that runs etcd-backup.sh.

The setup step runs when the member is created or the backup settings change; it prints where the
status file is and the newest snapshot's time at that moment. That time is not re-read on every
`pulumi up` (a step that ran on every up would make a no-op up a change); the status file and the
journal on the member are the live record.
"""

from __future__ import annotations

import json
from typing import Sequence

import pulumi

from components.config import ClusterSpec, EtcdBackup, Node
from components.remote import Context, node_command, node_script
from components.scripts import render

UNIT = "kubeadm-cluster-etcd-backup"
TOOLS_DIR = "/usr/local/lib/kubeadm-cluster/etcd"


def backup_script(spec: ClusterSpec, node: Node) -> str:
    backup: EtcdBackup = spec.etcd_backup
    # kubeadm's stacked etcd also listens on 127.0.0.1; our external members only on their own address.
    endpoint = "127.0.0.1" if spec.etcd_topology == "stacked" else node.internal_address
    return render("etcd-backup.sh", {
        "NODE_NAME": node.name,
        "ENDPOINT": f"https://{endpoint}:2379",
        "DIRECTORY": backup.directory,
        "RETENTION": backup.retention,
        "COPY_COMMAND": backup.copy_command,
        "TOOLS_DIR": TOOLS_DIR,
        "ETCDUTL_URL": backup.etcdutl_url,
        "ETCDUTL_SHA256S": etcdutl_sha256s(backup),
    }, includes=("etcd-tools.sh",))


def etcdutl_sha256s(backup: EtcdBackup) -> str:
    """etcd.backup.etcdutlSha256 as etcd-tools.sh reads it: one `FILE=SHA256` a line."""
    return "\n".join(f"{name}={digest}" for name, digest in sorted(backup.etcdutl_sha256.items()))


def service_unit() -> str:
    return (
        "[Unit]\n"
        "Description=kubeadm-cluster: etcd snapshot (etcd.backup)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "ExecStart=/usr/bin/bash /usr/local/lib/kubeadm-cluster/etcd-backup\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )


def timer_unit(schedule: str) -> str:
    return (
        "[Unit]\n"
        "Description=kubeadm-cluster: scheduled etcd snapshots\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={schedule}\n"
        # A snapshot missed while the machine was off is taken when it is back.
        "Persistent=true\n"
        "RandomizedDelaySec=60\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )


class EtcdBackups(pulumi.ComponentResource):
    """One setup step per etcd member, each after what makes etcd run there (`after`)."""

    def __init__(self, ctx: Context, members: Sequence[tuple[Node, pulumi.Resource]],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubeadm-cluster:index:EtcdBackups", "etcd-backup", None, opts)
        spec = ctx.spec
        backup = spec.etcd_backup
        statuses = []
        for node, after in members:
            setup = node_script("etcd-backup-setup.sh", {
                "NODE_NAME": node.name,
                "BACKUP_SCRIPT": backup_script(spec, node),
                "SERVICE_UNIT": service_unit(),
                "TIMER_UNIT": timer_unit(backup.schedule),
                "DIRECTORY": backup.directory,
            }, node)
            command = node_command(
                f"{node.name}-etcd-backup", ctx, node,
                create=setup, update=setup,
                delete=node_script("etcd-backup-remove.sh", {"DIRECTORY": backup.directory}, node),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[after]),
            )
            statuses.append(command.stdout.apply(lambda out, name=node.name: {
                "name": name, "schedule": backup.schedule, "statusFile": f"{backup.directory}/status.json",
                "lastSnapshot": last_snapshot(out)}))
        self.status = pulumi.Output.all(*statuses)
        self.register_outputs({"status": self.status})


def last_snapshot(stdout: str) -> str | None:
    """The newest snapshot's time the setup step printed (null before the first snapshot)."""
    lines = stdout.strip().splitlines()
    return json.loads(lines[-1]).get("lastSnapshot") if lines else None
