"""A lab cluster: the lab's hosts plus the engine, driven by stack configs (shared by the scenarios and `run`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from components.config import parse_spec
from components.program import main
from hosts import CLIENT_NS, Lab
from lab.engine import LabEngine, SshRunner, UpResult, print_line


def target_version(config: dict[str, Any]) -> str:
    """The version the program deploys for `config`: its own default and normalisation (v1.36.4 → 1.36.4)."""
    return parse_spec(config).kubernetes_version


class LabCluster:
    """Hosts for every node of `config_path`; `up(config)` runs the program for any subset of them."""

    def __init__(self, config_path: Path, log=print_line):
        self.lab = Lab.from_file(config_path)
        version = target_version(self.lab.config)  # a config the program rejects gets no hosts (ConfigError)
        # The config's own version too, so any stack config runs (the default versions serve upgrades).
        self.lab.versions = tuple(dict.fromkeys([*self.lab.versions, version]))
        self.log = log
        self.engine: LabEngine | None = None

    def __enter__(self) -> "LabCluster":
        try:
            self.lab.up()
        except BaseException:
            self.lab.down()  # __exit__ does not run when __enter__ fails
            raise
        self.engine = LabEngine(self.lab.work / "state.json", SshRunner(["ip", "netns", "exec", CLIENT_NS]),
                                log=self.log)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lab.down()

    def config(self, without: tuple[str, ...] = (), **changes: Any) -> dict[str, Any]:
        """The lab's derived stack config, minus some nodes, with some keys changed."""
        config = copy.deepcopy(self.lab.derived_config())
        config["nodes"] = [n for n in config["nodes"] if n["name"] not in without]
        config.update(changes)
        return config

    def up(self, config: dict[str, Any], rerun_all: bool = False) -> UpResult:
        assert self.engine is not None
        return self.engine.up(config, main, rerun_all=rerun_all)

    def destroy(self) -> UpResult:
        assert self.engine is not None
        return self.engine.destroy()

    def members(self) -> dict[str, dict[str, Any]]:
        return self.lab.journal().get("nodes", {})

    def problems(self, config: dict[str, Any]) -> list[str]:
        """How the stand-in cluster differs from `config`: every node joined, right role and version."""
        version = target_version(config)
        members = self.members()
        problems = []
        for node in config["nodes"]:
            if node["roles"] == ["etcd"]:
                if node["name"] not in self.lab.journal().get("externalEtcd", {}):
                    problems.append(f"{node['name']}: not an etcd member")
                continue
            member = members.get(node["name"])
            role = "control-plane" if "control-plane" in node["roles"] else "worker"
            if member is None:
                problems.append(f"{node['name']}: not in the cluster")
            elif member["role"] != role:
                problems.append(f"{node['name']}: role {member['role']}, expected {role}")
            elif member["kubelet"] != version or (role == "control-plane" and member["controlPlane"] != version):
                problems.append(f"{node['name']}: kubelet {member['kubelet']} control plane "
                                f"{member['controlPlane']}, expected {version}")
        extra = set(members) - {n["name"] for n in config["nodes"]}
        problems += [f"{name}: in the cluster but not in the config" for name in sorted(extra)]
        return problems
