"""Fixtures for the email-template work: a writable copy of the shipped templates, and
settings pointing at it. Registered by `pytest_plugins` in conftest.py."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from worker.playbook import load_playbook
from worker.reasons import load_reasons
from worker.settings import PROJECT_ROOT, Settings
from worker.template_check import CheckReport, check_templates

SHIPPED = PROJECT_ROOT / "email_templates"


@dataclass
class TemplateCopy:
    """A copy of email_templates/ under tmp_path, to break on purpose."""

    root: Path
    settings: Settings

    def path(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8")

    def write(self, name: str, text: str) -> None:
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def edit(self, name: str, old: str, new: str) -> None:
        text = self.read(name)
        assert old in text, f"{old!r} not in {name}"
        self.write(name, text.replace(old, new, 1))

    def check(self) -> CheckReport:
        return check_templates(
            self.settings,
            load_playbook(self.settings.playbook_path),
            load_reasons(self.root / "reasons.toml"),
        )


@pytest.fixture
def template_copy(tmp_path: Path, settings: Settings) -> TemplateCopy:
    root = tmp_path / "email_templates"
    shutil.copytree(SHIPPED, root)
    return TemplateCopy(
        root, replace(settings, templates_dir=root, playbook_path=root / "playbook.toml")
    )
