"""Every environment variable Farewell reads is documented in docs/configuration.md, under
the name the code reads (a renamed field must not leave the docs pointing at a dead name)."""

from __future__ import annotations

import re
from pathlib import Path

from worker.settings import Settings

CONFIGURATION = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
CONFIG_ROWS = set(
    re.findall(
        r"^\| `([A-Z][A-Z0-9_]+)`", CONFIGURATION.read_text(encoding="utf-8"), flags=re.MULTILINE
    )
)


def test_every_setting_has_a_row_in_the_configuration_table():
    missing = sorted(set(Settings.env_names().values()) - CONFIG_ROWS)
    assert missing == []


def test_the_documented_playbook_variable_is_the_one_read(tmp_path):
    playbook = tmp_path / "playbook.toml"
    settings = Settings.from_env({"FAREWELL_PLAYBOOK": str(playbook)})
    assert settings.playbook_path == playbook
