"""The playbook: which emails follow a cancellation, and when.

Read from `email_templates/playbook.toml` (marketers' file) with tomllib. Pure: loading and
validation never touch Redis or RQ.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

STREAMS = ("transactional", "marketing")
_DELAY = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$")
_UNITS = {"": "minutes", "m": "minutes", "h": "hours", "d": "days"}


class PlaybookError(ValueError):
    """The playbook is invalid; the message names the file, the step and the problem."""


@dataclass(frozen=True)
class Step:
    template: str
    delay: timedelta
    stream: str

    @property
    def id(self) -> str:
        return self.template


@dataclass(frozen=True)
class Playbook:
    default: tuple[Step, ...]
    memberships: dict[str, tuple[Step, ...]]

    def steps_for(self, membership_id: str | None) -> tuple[Step, ...]:
        return self.memberships.get(membership_id or "", self.default)

    def step(self, membership_id: str | None, step_id: str) -> Step | None:
        return next((s for s in self.steps_for(membership_id) if s.id == step_id), None)


def parse_delay(value: Any) -> timedelta:
    """'0', '30m', '48h', '14d' -> timedelta. A bare number means minutes."""
    match = _DELAY.match(str(value))
    if not match:
        raise ValueError(f"delay {value!r} is not like '30m', '48h' or '14d'")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def load_playbook(path: Path) -> Playbook:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise PlaybookError(f"{path}: file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlaybookError(f"{path}: not valid TOML: {exc}") from exc
    if "default" not in data:
        raise PlaybookError(f"{path}: a [default] table with steps is required")
    default = _steps(path, "default", data["default"])
    memberships = {
        str(mid): _steps(path, f"memberships.{mid}", table)
        for mid, table in (data.get("memberships") or {}).items()
    }
    return Playbook(default=default, memberships=memberships)


def _steps(path: Path, where: str, table: Any) -> tuple[Step, ...]:
    if not isinstance(table, dict) or not isinstance(table.get("steps"), list):
        raise PlaybookError(f"{path}: [{where}] needs a 'steps' list")
    steps = []
    seen: set[str] = set()
    for n, raw in enumerate(table["steps"], start=1):
        at = f"{path}: [{where}] step {n}"
        if not isinstance(raw, dict):
            raise PlaybookError(f'{at}: must be a table like {{ template = "..." }}')
        template = raw.get("template")
        if not isinstance(template, str) or not re.fullmatch(r"[a-z0-9_]+", template):
            raise PlaybookError(f"{at}: 'template' must be a name like feedback_request")
        if template in seen:
            raise PlaybookError(f"{at}: template {template!r} is used twice")
        seen.add(template)
        try:
            delay = parse_delay(raw.get("delay", "0"))
        except ValueError as exc:
            raise PlaybookError(f"{at}: {exc}") from exc
        stream = raw.get("stream", "transactional")
        if stream not in STREAMS:
            raise PlaybookError(f"{at}: stream must be one of {', '.join(STREAMS)}")
        steps.append(Step(template=template, delay=delay, stream=stream))
    return tuple(steps)
