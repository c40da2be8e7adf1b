"""docs/recovery.md as the tests read it: its sections, its bash blocks and the example values they use."""

from __future__ import annotations

import re
from pathlib import Path

RECOVERY = Path(__file__).parent.parent / "docs" / "recovery.md"
DOCS_ID = "2026-11-25-1"  # the example etcd.restore.id of docs/recovery.md
DOCS_SNAPSHOT = "/var/lib/etcd-backups/etcd-cp1-20261125T060000Z.db"


def docs_section(title: str) -> str:
    text = RECOVERY.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def bash_blocks(section: str) -> list[str]:
    """The fenced bash blocks of SECTION, without the indentation of a list item."""
    return [re.sub(r"^ {3}", "", block, flags=re.M)
            for block in re.findall(r"```bash\n(.*?)```", section, re.S)]
