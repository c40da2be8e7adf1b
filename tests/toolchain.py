"""The real Pulumi CLI and plugins built by toolchain/build, for tests.

env() returns the variables `toolchain/build --env` exports (PATH with the CLI first, PULUMI_HOME, ...),
merged over os.environ. Unless build=True it never starts a build (TOOLCHAIN_NO_BUILD): run
toolchain/build first (.ci/run does); if it is not built, ToolchainUnavailable carries the one-line
reason.
"""
import os
import shlex
import subprocess
from pathlib import Path

BUILD = Path(__file__).resolve().parent.parent / "toolchain" / "build"


class ToolchainUnavailable(RuntimeError):
    pass


def env(base=None, build=False):
    base = dict(os.environ if base is None else base)
    r = subprocess.run([str(BUILD), "--env"], capture_output=True, text=True,
                       env=base if build else {**base, "TOOLCHAIN_NO_BUILD": "1"})
    if r.returncode:
        lines = [l for l in r.stderr.splitlines() if "error" in l] or r.stderr.splitlines() or ["failed"]
        raise ToolchainUnavailable(" / ".join(lines))
    for line in r.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        base[key] = shlex.split(value)[0]
    return base
