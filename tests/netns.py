"""A one-host network namespace for tests that run a rendered script against real daemons.

`run_on_private_host` runs one driver script to its end; `private_host` keeps a host running (a PID 1
of your choice, e.g. the kubelet double) for tests that run several steps on it (tests/real_control_plane.py).
"""
import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

HOST_ADDRESS = "198.18.0.11"  # the lab's benchmarking range: nothing outside the namespace is reachable
# A private host's processes get a root login's environment, not the test's (pytest sets COLUMNS, which
# cuts `ps -ef` lines: kube-bench reads flags from them).
HOST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8"}


@contextlib.contextmanager
def private_netns(prefix: str) -> Iterator[str]:
    """A fresh network namespace PREFIX-PID whose eth0 has HOST_ADDRESS/24 (lo up); deleted afterwards."""
    name = f"{prefix}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for args in (["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], ["link", "set", "lo", "up"],
                     ["link", "set", "eth0", "up"], ["addr", "add", f"{HOST_ADDRESS}/24", "dev", "eth0"]):
            subprocess.run(["ip", "-n", name, *args], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def run_on_private_host(prefix: str, driver: str, tmp_path: Path, *, timeout: int,
                        stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `bash -c driver` in a fresh network namespace whose eth0 has HOST_ADDRESS/24, in a private
    mount namespace and a PID namespace (every daemon the driver starts ends with it); T=tmp_path."""
    with private_netns(prefix) as name:
        return subprocess.run(["ip", "netns", "exec", name, "unshare", "-m", "--propagation", "private",
                               "-p", "--fork", "--kill-child", "bash", "-c", driver],
                              input=stdin, env={**os.environ, "T": str(tmp_path)},
                              capture_output=True, text=True, timeout=timeout)


@dataclass
class PrivateHost:
    """A running private host: its PID 1 as this machine sees it, and where its files live."""

    pid: int
    root: Path

    def run(self, script: str, *, timeout: float = 300, stdin: str | None = None) -> subprocess.CompletedProcess:
        """`bash -c script` as root inside the host's network, mount and PID namespaces."""
        return subprocess.run(["nsenter", f"--target={self.pid}", "--mount", "--pid", "--net", "--",
                               "bash", "-c", script], input=stdin, capture_output=True, text=True, timeout=timeout,
                              env=HOST_ENV)

    def sh(self, script: str, *, timeout: float = 300, stdin: str | None = None) -> str:
        """Like run, asserting success; returns stdout."""
        result = self.run(script, timeout=timeout, stdin=stdin)
        assert result.returncode == 0, f"on the private host: {script}\n{result.stdout}\n{result.stderr}"
        return result.stdout


@contextlib.contextmanager
def private_host(prefix: str, root: Path, init: str, *, overlays: tuple[str, ...] = ("/etc", "/var/lib", "/var/log"),
                 binds: dict[str, Path] | None = None) -> Iterator[PrivateHost]:
    """A host at HOST_ADDRESS that runs until the block ends: a network namespace (private_netns), a mount
    namespace in which each of OVERLAYS is a writable overlay over this machine's directory (its changes
    under ROOT, nothing of this machine changes) and each BINDS target (e.g. /usr/local/bin) shows a
    directory of ROOT's choosing, and a PID namespace with /proc of its own whose PID 1 is `exec INIT`
    (a shell command; its output goes to ROOT/init.log). Ending the block kills PID 1, which ends every
    process of the host."""
    root.mkdir(parents=True, exist_ok=True)
    mounts = []
    for i, target in enumerate(overlays):
        upper, work = root / f"upper{i}", root / f"work{i}"
        upper.mkdir()
        work.mkdir()
        mounts.append(f"mount -t overlay overlay -o lowerdir={target},upperdir={upper},workdir={work} {target}")
    mounts += [f"mount --bind {source} {target}" for target, source in (binds or {}).items()]
    ready = root / "ready"  # outside the overlays: this machine sees it once the mounts are done
    setup = "set -e\n" + "\n".join(mounts) + f"\ntouch {ready}\nexec {init}\n"
    with private_netns(prefix) as name, open(root / "init.log", "wb") as log:
        process = subprocess.Popen(["ip", "netns", "exec", name, "unshare", "--mount", "--pid", "--fork",
                                    "--mount-proc", "--propagation", "private", "bash", "-c", setup],
                                   stdout=log, stderr=subprocess.STDOUT, env=HOST_ENV)
        pid = 0
        try:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
            for _ in range(200):
                pids = children.read_text().split() if children.exists() else []
                if pids and ready.exists():
                    pid = int(pids[0])
                    break
                assert process.poll() is None, f"the private host did not start: {(root / 'init.log').read_text()}"
                time.sleep(0.05)
            assert pid, f"the private host did not start: {(root / 'init.log').read_text()}"
            yield PrivateHost(pid, root)
        finally:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)  # PID 1: the kernel ends everything in its namespace
            process.wait(60)
