"""The README's configuration reference cannot drift from the config module."""

from __future__ import annotations

import re
from pathlib import Path

from components.config import KNOWN_KEYS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def reference_rows() -> list[str]:
    section = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `")]


def documented_keys() -> set[str]:
    """Dotted keys named in the first column, plus `{a, b}` sub-keys listed for a key."""
    keys = set()
    for row in reference_rows():
        first, _, rest = row[2:].partition("|")
        for key in re.findall(r"`([^`]+)`", first):
            keys.add(key.removesuffix("[]"))
            # A list of mappings is documented as `key[]` or with its item keys as `{a, b, c}`.
            items = key if key.endswith("[]") else (f"{key}[]" if f"{key}[]" in KNOWN_KEYS else key)
            for sub in re.findall(r"`\{([^}]+,[^}]+)\}`", row):
                keys.update(f"{items}.{part.strip()}" for part in sub.split(","))
    return keys


def accepted_keys() -> set[str]:
    keys = set()
    for prefix, names in KNOWN_KEYS.items():
        keys.update(f"{prefix}.{name}" if prefix else name for name in names)
    return keys


def leaves(keys: set[str]) -> set[str]:
    """Keys that are not merely the parent of documented sub-keys."""
    return {k for k in keys if not any(other.startswith((k + ".", k + "[].")) for other in keys)}


def test_every_accepted_key_is_documented():
    documented = documented_keys()
    missing = {key for key in leaves(accepted_keys())
               if key not in documented and not any(key.startswith(d + ".") for d in documented)}
    assert missing == set()


def test_every_documented_key_is_accepted():
    accepted = accepted_keys()
    assert {key for key in documented_keys() if key not in accepted} == set()


def test_readme_names_the_test_command():
    assert ".venv/bin/python -m pytest" in README
