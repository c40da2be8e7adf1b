"""The test suite (.ci/run) and the lab's try command (lab/try) install through one script, .ci/setup."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {name: ROOT / name for name in (".ci/setup", ".ci/run", "lab/try")}


@pytest.mark.parametrize("name", [".ci/run", "lab/try"])
def test_installs_only_through_the_shared_setup(name):
    text = SCRIPTS[name].read_text()
    assert re.search(r"^\.ci/setup$", text, re.M)
    for installer in ("apt-get install", "pip install", "python3 -m venv"):
        assert installer not in text, f"{name} installs by itself ({installer}): put it in .ci/setup"


def test_setup_installs_the_venv_the_packages_and_the_toolchain():
    text = SCRIPTS[".ci/setup"].read_text()
    assert "apt-get install" in text and "-r requirements.txt" in text and re.search(r"^timed toolchain/build$", text, re.M)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_is_shellcheck_clean(name):
    done = subprocess.run(["shellcheck", str(SCRIPTS[name])], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_lab_try_brings_up_under_the_lab_lock_and_keeps_the_state():
    text = SCRIPTS["lab/try"].read_text()
    assert re.search(r'^if ! flock "\$lock" tests/lab/run --state "\$state" "\$config"; then$', text, re.M)
    assert "lock=/tmp/kclab.lock" in text
