"""Rendering of the `.sh` templates that sit beside each phase module.

A template is a plain bash file (shellcheck-clean on its own) that reads UPPERCASE parameters.
Rendering puts a header (`set -euo pipefail`), the parameters as shell-quoted assignments and the
shared helpers of `common.sh` in front of it, so `pulumi preview --diff` shows exactly what runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Mapping, Sequence, Union

import yaml

COMPONENTS_DIR = Path(__file__).parent
HEREDOC_MARK = "KUBEADM_CLUSTER_SCRIPT"
ParamValue = Union[str, int, bool, None]
PARAM_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _template(name: str) -> str:
    text = (COMPONENTS_DIR / name).read_text()
    # The template's own shebang and `set` line are replaced by the rendered header.
    lines = [line for line in text.splitlines() if not line.startswith("#!") and line != "set -euo pipefail"]
    return "\n".join(lines).strip("\n") + "\n"


def _quote(value: ParamValue) -> str:
    if value is None:
        return "''"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shlex.quote(str(value))


def _assignment(key: str, value: ParamValue) -> str:
    line = f"{key}={_quote(value)}\n"
    if "$" in str(value) or "`" in str(value):
        # The value is data (a config file or script for the node), deliberately not expanded here.
        line = "# shellcheck disable=SC2016\n" + line
    return line


def render(template: str, params: Mapping[str, ParamValue], includes: Sequence[str] = ()) -> str:
    """The full bash script for `template` (a path under components/) with `params` bound.

    `includes` are helper files (e.g. packages.sh) placed after common.sh, before the template.
    """
    for key in params:
        if not PARAM_NAME_RE.match(key):
            raise ValueError(f"script parameter {key!r} must be UPPER_CASE")
    assignments = "".join(_assignment(key, value) for key, value in sorted(params.items()))
    script = "#!/usr/bin/env bash\n" f"# kubeadm-cluster: {template}\n" "set -euo pipefail\n"
    script += assignments + "".join(_template(name) for name in ("common.sh", *includes, template))
    if HEREDOC_MARK in script:
        raise ValueError(f"{template}: the rendered script must not contain {HEREDOC_MARK}")
    return script


def remote_command(script: str, use_sudo: bool) -> str:
    """The command line pulumi-command runs: a POSIX sh wrapper that runs `script` with bash as root.

    The script travels in a quoted heredoc (shown verbatim in diffs); stdin stays free for secrets
    and is inherited by the inner bash.
    """
    runner = "sudo -n bash" if use_sudo else "bash"
    return (
        "set -eu\n"
        "script=$(mktemp)\n"
        "trap 'rm -f \"$script\"' EXIT\n"
        f"cat > \"$script\" <<'{HEREDOC_MARK}'\n"
        f"{script}"
        f"{HEREDOC_MARK}\n"
        f"{runner} \"$script\"\n"
    )


def yaml_documents(*documents: Mapping) -> str:
    """Multi-document YAML with stable key order, for config files embedded in scripts."""
    return "---\n".join(yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False) for doc in documents)
