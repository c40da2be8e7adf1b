"""A one-host network namespace for tests that run a rendered script against real daemons."""
import os
import subprocess
from pathlib import Path

HOST_ADDRESS = "198.18.0.11"  # the lab's benchmarking range: nothing outside the namespace is reachable


def run_on_private_host(prefix: str, driver: str, tmp_path: Path, *, timeout: int,
                        stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run `bash -c driver` in a fresh network namespace whose eth0 has HOST_ADDRESS/24, in a private
    mount namespace and a PID namespace (every daemon the driver starts ends with it); T=tmp_path."""
    name = f"{prefix}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for args in (["link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"], ["link", "set", "lo", "up"],
                     ["link", "set", "eth0", "up"], ["addr", "add", f"{HOST_ADDRESS}/24", "dev", "eth0"]):
            subprocess.run(["ip", "-n", name, *args], check=True)
        return subprocess.run(["ip", "netns", "exec", name, "unshare", "-m", "--propagation", "private",
                               "-p", "--fork", "--kill-child", "bash", "-c", driver],
                              input=stdin, env={**os.environ, "T": str(tmp_path)},
                              capture_output=True, text=True, timeout=timeout)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
