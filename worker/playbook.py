"""The playbook: which emails follow a cancellation, when, and with what incentive.

Read from `email_templates/playbook.toml` (marketers' file) with tomllib. Pure: loading and
validation never touch Redis or RQ. Every problem is reported at once, each line naming the
file, the table and step, and what is wrong, so a marketer can fix them in one pass.

    [default]
    steps = [
      { template = "feedback_request", delay = "0", stream = "transactional" },
      { template = "winback", delay = "14d", stream = "marketing", incentive = "membership" },
    ]
    # An A/B test: a step lists `variants` (weights are shares), see worker/variants.py:
    #   { variants = [{ template = "winback", weight = 50 }, { template = "winback_b",
    #     weight = 50 }], delay = "14d", stream = "marketing" }

    [incentives.gold_back]            # a fixed code ...
    code = "COMEBACK20"
    offer = { en = "20% off your first three months", pt_BR = "20% de desconto ..." }

    [incentives.silver_codes]         # ... or a file of single-use codes, one per line
    pool = "coupons/silver.txt"       # relative to this file
    when_exhausted = "send_without"   # or "skip_step"

    [memberships.3006]                # per membership: its incentive, and optionally
    incentive = "gold_back"           # its own steps (else the default steps apply)
    locale = "pt_BR"                  # and the language of its emails when the source
                                      # does not say (MemberPress never does)

Guardrails (cooldown, email cap, unsubscribe links) are not in the playbook on purpose:
no playbook can switch them off (see worker/settings.py and worker/jobs.py).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .locales import normalize_locale

STREAMS = ("transactional", "marketing")
# "send_without": send the step without the incentive paragraph; "skip_step": send nothing.
WHEN_EXHAUSTED = ("send_without", "skip_step")
MEMBERSHIP_INCENTIVE = "membership"  # a step's `incentive` meaning "the membership's own"
_DELAY = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$")
_UNITS = {"": "minutes", "m": "minutes", "h": "hours", "d": "days"}
_NAME = re.compile(r"^[a-z0-9_]+$")
_INCENTIVE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_STEP_KEYS = {
    "template",
    "variants",
    "delay",
    "stream",
    "incentive",
    "only_if_no_feedback",
    "only_if_no_reason",
    "only_if_reason",
}
# The step that asks why the member left. Playbooks written before `only_if_no_reason`
# existed had that rule built in for it: it still holds for them when the key is absent.
ASKS_WHY_TEMPLATE = "feedback_request"
_VARIANT_KEYS = {"template", "weight"}
_INCENTIVE_KEYS = {"code", "pool", "when_exhausted", "offer", "valid_days"}
_MEMBERSHIP_KEYS = {"steps", "incentive", "locale", "rejoin_url"}
_DEFAULT_KEYS = {"steps", "rejoin_url"}
CODE_PLACEHOLDER = "{code}"  # the one placeholder a rejoin_url may hold


class PlaybookError(ValueError):
    """The playbook is invalid; each line names the file, the step and the problem."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class TemplateVariant:
    """One arm of an A/B test: a template and its share of the members (worker/variants.py)."""

    template: str
    weight: int


@dataclass(frozen=True)
class Step:
    template: str
    delay: timedelta
    stream: str
    incentive: str = ""  # "", "membership" or the name of an [incentives.<name>] table
    only_if_no_feedback: bool = False
    only_if_reason: tuple[str, ...] = ()  # send only if the member picked one of these
    only_if_no_reason: bool = False  # skip once the member told us why (e.g. to Stripe)
    # An A/B test: each member gets one of these (stable per member and sequence);
    # `template` is then the first one's, and names the step.
    variants: tuple[TemplateVariant, ...] = ()

    @property
    def id(self) -> str:
        return self.template

    @property
    def asks_why(self) -> bool:
        """The step that asks the member why they left (the survey's email)."""
        return self.template == ASKS_WHY_TEMPLATE

    @property
    def templates(self) -> tuple[str, ...]:
        """Every template this step can send."""
        return tuple(v.template for v in self.variants) or (self.template,)


@dataclass(frozen=True)
class Incentive:
    name: str
    code: str = ""  # a fixed code everyone gets
    pool: Path | None = None  # or a file of single-use codes, one per member
    when_exhausted: str = "send_without"
    offer: dict[str, str] = field(default_factory=dict)  # locale -> one line describing it
    valid_days: int | None = None  # the offer holds this many days after the email is sent

    def offer_text(self, locale: str, default_locale: str = "en") -> str | None:
        return self.offer.get(locale) or self.offer.get(default_locale) or None


@dataclass(frozen=True)
class Playbook:
    default: tuple[Step, ...]
    memberships: dict[str, tuple[Step, ...]]
    incentives: dict[str, Incentive] = field(default_factory=dict)
    membership_incentives: dict[str, str] = field(default_factory=dict)  # membership -> name
    # membership -> the language of its emails, for sources that do not tell the member's
    # (MemberPress sends no locale): a bilingual site sells one membership per language.
    membership_locales: dict[str, str] = field(default_factory=dict)
    # membership -> where a member rejoins (may hold {code}); "" is [default]'s, the site's
    # plain rejoin page, also used for memberships without their own.
    rejoin_urls: dict[str, str] = field(default_factory=dict)

    def steps_for(self, membership_id: str | None) -> tuple[Step, ...]:
        return self.memberships.get(membership_id or "", self.default)

    def step(self, membership_id: str | None, step_id: str) -> Step | None:
        return next((s for s in self.steps_for(membership_id) if s.id == step_id), None)

    def locale_for(self, membership_id: str | None) -> str | None:
        return self.membership_locales.get(membership_id or "")

    def rejoin_url_for(self, membership_id: str | None) -> str | None:
        """The membership's rejoin page, else the site's plain one, else None."""
        return self.rejoin_urls.get(membership_id or "") or self.rejoin_urls.get("") or None

    def incentive_for(self, membership_id: str | None, step: Step) -> Incentive | None:
        """The incentive a step offers this membership, or None."""
        name = step.incentive
        if name == MEMBERSHIP_INCENTIVE:
            name = self.membership_incentives.get(membership_id or "", "")
        return self.incentives.get(name) if name else None


def parse_delay(value: Any) -> timedelta:
    """'0', '30m', '48h', '14d' -> timedelta. A bare number means minutes."""
    match = _DELAY.match(str(value))
    if isinstance(value, bool) or not match:
        raise ValueError(f"delay {value!r} is not like '30m', '48h' or '14d'")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def pool_codes(text: str) -> list[str]:
    """Codes in a pool file's text: one per line; blank lines and `#` comments are ignored."""
    codes = []
    for line in text.splitlines():
        code = line.strip()
        if code and not code.startswith("#"):
            codes.append(code)
    return codes


def load_playbook(
    path: Path,
    *,
    templates_dir: Path | None = None,
    reason_ids: Iterable[str] | None = None,
) -> Playbook:
    """Load and validate. With `templates_dir`, every step's template must exist there; with
    `reason_ids`, every `only_if_reason` id must be a known reason."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise PlaybookError([f"{path}: file not found"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlaybookError([f"{path}: not valid TOML: {exc}"]) from exc
    checker = _Checker(path, templates_dir, set(reason_ids) if reason_ids is not None else None)
    playbook = checker.playbook(data)
    if checker.errors:
        raise PlaybookError(checker.errors)
    return playbook


class _Checker:
    """Collects every problem instead of stopping at the first."""

    def __init__(self, path: Path, templates_dir: Path | None, reasons: set[str] | None):
        self.path = path
        self.templates_dir = templates_dir
        self.reasons = reasons
        self.errors: list[str] = []

    def error(self, where: str, problem: str) -> None:
        self.errors.append(f"{self.path}: {where}: {problem}")

    def playbook(self, data: dict[str, Any]) -> Playbook:
        for key in data:
            if key not in ("default", "memberships", "incentives"):
                self.error(f"[{key}]", "unknown table (expected default, memberships, incentives)")
        incentives = self.incentives(data.get("incentives", {}))
        if "default" not in data:
            self.error("[default]", "a [default] table with steps is required")
            default: tuple[Step, ...] = ()
        else:
            default = self.steps("default", data["default"], incentives)
        rejoin_urls: dict[str, str] = {}
        if isinstance(data.get("default"), dict):
            for key in sorted(set(data["default"]) - _DEFAULT_KEYS):
                self.error("[default]", f"unknown key {key!r} (expected steps, rejoin_url)")
            if "rejoin_url" in data["default"]:
                url = self.rejoin_url("[default]", data["default"]["rejoin_url"])
                if url and CODE_PLACEHOLDER in url:
                    self.error("[default]", "rejoin_url is the plain rejoin page: no {code}")
                elif url:
                    rejoin_urls[""] = url
        memberships: dict[str, tuple[Step, ...]] = {}
        membership_incentives: dict[str, str] = {}
        membership_locales: dict[str, str] = {}
        raw_memberships = data.get("memberships", {})
        if not isinstance(raw_memberships, dict):
            self.error("[memberships]", "must be tables like [memberships.3006]")
            raw_memberships = {}
        for mid, table in raw_memberships.items():
            where = f"[memberships.{mid}]"
            if not isinstance(table, dict):
                self.error(where, "must be a table")
                continue
            for key in set(table) - _MEMBERSHIP_KEYS:
                self.error(
                    where, f"unknown key {key!r} (expected steps, incentive, locale, rejoin_url)"
                )
            if "rejoin_url" in table:
                url = self.rejoin_url(where, table["rejoin_url"])
                if url:
                    rejoin_urls[str(mid)] = url
            if "locale" in table:
                raw = table["locale"]
                locale = normalize_locale(raw) if isinstance(raw, str) else None
                if locale is None:
                    self.error(where, f"locale {raw!r} is not one Farewell writes (en, pt_BR)")
                else:
                    membership_locales[str(mid)] = locale
            if "incentive" in table:
                name = table["incentive"]
                if not isinstance(name, str) or name not in incentives:
                    self.error(where, f"incentive {name!r} is not defined in [incentives]")
                else:
                    membership_incentives[str(mid)] = name
            if "steps" in table:
                memberships[str(mid)] = self.steps(f"memberships.{mid}", table, incentives)
        return Playbook(
            default=default,
            memberships=memberships,
            incentives=incentives,
            membership_incentives=membership_incentives,
            membership_locales=membership_locales,
            rejoin_urls=rejoin_urls,
        )

    def rejoin_url(self, where: str, raw: Any) -> str | None:
        """An absolute http(s) URL whose only placeholder is {code}."""
        if not isinstance(raw, str) or not raw.startswith(("https://", "http://")):
            self.error(where, f"rejoin_url {raw!r} must be an https:// URL")
            return None
        if any(ch in raw.replace(CODE_PLACEHOLDER, "") for ch in "{}") or any(
            ch.isspace() for ch in raw
        ):
            self.error(where, f"rejoin_url {raw!r}: no spaces; {{code}} is its one placeholder")
            return None
        return raw

    def incentives(self, raw: Any) -> dict[str, Incentive]:
        if not isinstance(raw, dict):
            self.error("[incentives]", "must be tables like [incentives.comeback]")
            return {}
        result = {}
        for name, table in raw.items():
            where = f"[incentives.{name}]"
            if not _INCENTIVE_NAME.match(name) or name == MEMBERSHIP_INCENTIVE:
                self.error(where, "name must be letters, digits, '_' or '-' (not 'membership')")
                continue
            if not isinstance(table, dict):
                self.error(where, "must be a table with `code` or `pool`")
                continue
            for key in set(table) - _INCENTIVE_KEYS:
                self.error(
                    where,
                    f"unknown key {key!r} (expected code, pool, when_exhausted, offer, valid_days)",
                )
            code, pool = table.get("code", ""), table.get("pool")
            if bool(code) == bool(pool):
                self.error(where, "needs exactly one of `code` (a fixed code) or `pool` (a file)")
                continue
            if code and not isinstance(code, str):
                self.error(where, "`code` must be text")
                continue
            pool_path = None
            if pool:
                pool_path = self.path.parent / str(pool)
                if not pool_path.is_file():
                    self.error(where, f"pool file {pool_path} not found")
                    continue
            when = table.get("when_exhausted", "send_without")
            if when not in WHEN_EXHAUSTED:
                self.error(where, f"when_exhausted must be one of {', '.join(WHEN_EXHAUSTED)}")
                continue
            offer = table.get("offer", {})
            if isinstance(offer, str):
                offer = {"en": offer}
            if not isinstance(offer, dict) or not all(isinstance(v, str) for v in offer.values()):
                self.error(where, '`offer` must be text or a table like { en = "..." }')
                continue
            valid_days = table.get("valid_days")
            if valid_days is not None and (
                isinstance(valid_days, bool) or not isinstance(valid_days, int) or valid_days < 1
            ):
                self.error(where, "valid_days must be a whole number of days, 1 or more")
                continue
            result[name] = Incentive(
                name=name,
                code=code,
                pool=pool_path,
                when_exhausted=when,
                offer=dict(offer),
                valid_days=valid_days,
            )
        return result

    def steps(self, where: str, table: Any, incentives: dict[str, Incentive]) -> tuple[Step, ...]:
        if not isinstance(table, dict) or not isinstance(table.get("steps"), list):
            self.error(f"[{where}]", "needs a 'steps' list")
            return ()
        steps = []
        seen: set[str] = set()
        for n, raw in enumerate(table["steps"], start=1):
            step = self.step(f"[{where}] step {n}", raw, incentives)
            if step is None:
                continue
            if step.template in seen:
                self.error(f"[{where}] step {n}", f"template {step.template!r} is used twice")
                continue
            seen.add(step.template)
            steps.append(step)
        return tuple(steps)

    def variants(self, at: str, raw: Any) -> tuple[TemplateVariant, ...] | None:
        """`variants = [{ template = "winback", weight = 50 }, ...]`: at least two different
        templates, each with a whole-number weight above 0. None (reported) when wrong."""
        shape = 'variants must be a list like [{ template = "winback", weight = 50 }, ...]'
        if not isinstance(raw, list) or len(raw) < 2:
            self.error(at, f"{shape}, with at least two")
            return None
        found: list[TemplateVariant] = []
        for n, item in enumerate(raw, start=1):
            where = f"{at} variant {n}"
            if not isinstance(item, dict):
                self.error(where, shape)
                return None
            for key in sorted(set(item) - _VARIANT_KEYS):
                self.error(where, f"unknown key {key!r} (expected template, weight)")
                return None
            template, weight = item.get("template"), item.get("weight", 1)
            if not isinstance(template, str) or not _NAME.match(template):
                self.error(where, "'template' must be a name like winback_b")
                return None
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                self.error(where, f"weight must be a whole number above 0, not {weight!r}")
                return None
            if template in {v.template for v in found}:
                self.error(where, f"template {template!r} is listed twice")
                return None
            found.append(TemplateVariant(template, weight))
        return tuple(found)

    def step(self, at: str, raw: Any, incentives: dict[str, Incentive]) -> Step | None:
        if not isinstance(raw, dict):
            self.error(at, 'must be a table like { template = "..." }')
            return None
        ok = True
        for key in sorted(set(raw) - _STEP_KEYS):
            self.error(at, f"unknown key {key!r} (expected {', '.join(sorted(_STEP_KEYS))})")
            ok = False
        variants = self.variants(at, raw["variants"]) if "variants" in raw else ()
        if variants is None:
            return None
        template = raw.get("template", variants[0].template if variants else None)
        if not isinstance(template, str) or not _NAME.match(template):
            self.error(at, "'template' must be a name like feedback_request")
            return None
        if variants and template not in {v.template for v in variants}:
            self.error(at, f"template {template!r} must be one of the variants (or left out)")
            return None
        for name in [v.template for v in variants] or [template]:
            if self.templates_dir is not None and not self._template_exists(name):
                self.error(at, f"template {name!r} has no .html and .txt in {self.templates_dir}")
                ok = False
        try:
            delay = parse_delay(raw.get("delay", "0"))
        except ValueError as exc:
            self.error(at, str(exc))
            ok = False
            delay = timedelta(0)
        stream = raw.get("stream", "transactional")
        if stream not in STREAMS:
            self.error(at, f"stream must be one of {', '.join(STREAMS)}, not {stream!r}")
            ok = False
        incentive = raw.get("incentive", "")
        if incentive and incentive != MEMBERSHIP_INCENTIVE and incentive not in incentives:
            self.error(at, f"incentive {incentive!r} is not 'membership' or an [incentives] name")
            ok = False
        if incentive and stream != "marketing":
            self.error(at, "an incentive is promotional: the step's stream must be marketing")
            ok = False
        no_feedback = raw.get("only_if_no_feedback", False)
        if not isinstance(no_feedback, bool):
            self.error(at, "only_if_no_feedback must be true or false")
            ok = False
        reasons = raw.get("only_if_reason", [])
        if isinstance(reasons, str):
            reasons = [reasons]
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            self.error(at, 'only_if_reason must be a list of reason ids like ["too_expensive"]')
            ok = False
            reasons = []
        elif self.reasons is not None:
            for reason in reasons:
                if reason not in self.reasons:
                    self.error(at, f"only_if_reason: {reason!r} is not a reason in reasons.toml")
                    ok = False
        if no_feedback is True and reasons:
            self.error(at, "only_if_no_feedback and only_if_reason cannot both hold")
            ok = False
        no_reason = raw.get("only_if_no_reason", template == ASKS_WHY_TEMPLATE and not reasons)
        if not isinstance(no_reason, bool):
            self.error(at, "only_if_no_reason must be true or false")
            ok = False
        elif no_reason and reasons:
            self.error(at, "only_if_no_reason and only_if_reason cannot both hold")
            ok = False
        if not ok:
            return None
        return Step(
            variants=variants,
            template=template,
            delay=delay,
            stream=stream,
            incentive=incentive,
            only_if_no_feedback=no_feedback,
            only_if_reason=tuple(reasons),
            only_if_no_reason=no_reason,
        )

    def _template_exists(self, name: str) -> bool:
        assert self.templates_dir is not None
        return any(
            (folder / f"{name}.html").is_file() and (folder / f"{name}.txt").is_file()
            for folder in self.templates_dir.rglob("*")
            if folder.is_dir()
        )
