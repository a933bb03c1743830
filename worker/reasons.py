"""Survey reasons: stable ids with labels per locale.

Ids are what is stored, so renaming a label never splits a reason's history. Labels are
content and live in `email_templates/reasons.toml`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Reason:
    id: str
    labels: dict[str, str]

    def label(self, locale: str, default_locale: str = "en") -> str:
        return self.labels.get(locale) or self.labels.get(default_locale) or self.id


def load_reasons(path: Path) -> list[Reason]:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return [Reason(id=rid, labels=dict(labels)) for rid, labels in data.items()]
