"""Email versions saved in the admin editor, and the loader that sends the published one.

An email is one language (and optionally one membership) of one template: `en/winback`,
`memberships/3006/pt_BR/winback`. Each save in `/admin/templates/<name>/edit` appends a
version (time, note, the HTML and text sources) to its history in Redis and publishes it;
rollback publishes an older one. **The published version wins over the file**: the
worker, the gallery and the check read `VersionedLoader`, which serves the published
sources and falls back to the files in the templates folder for everything else (layouts,
emails never edited in the browser). `flask --app hooks templates export DIR` writes the
published versions as files, to commit them as the new defaults.
"""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import BaseLoader, Environment, FileSystemLoader, TemplateNotFound
from redis.exceptions import RedisError

from .store import Store

# One part of one email, as typed in the editor: far above any real email, far below
# what could hurt (the rendered output has its own limit in worker/sandbox.py).
MAX_PART_CHARS = 100_000
MAX_NOTE_CHARS = 200
PUBLISHED_REFRESH_SECONDS = 1.0  # a save reaches every worker within about this long
_BLOCK = r"\{%-?\s*block\s+NAME\s*-?%\}(.*?)\{%-?\s*endblock(?:\s+NAME)?\s*-?%\}"
_EXTENDS = re.compile(r"\A(\s*\{%-?\s*extends\s[^%]*%\}[ \t]*\n?)")
_NAME = re.compile(r"[a-z0-9_]{1,64}")
_MEMBERSHIP = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LOCALE = re.compile(r"[A-Za-z]{2,3}(_[A-Za-z0-9]{2,4})?")


class VersionError(ValueError):
    """Bad input for a version: too long, unknown email, no such version."""


@dataclass(frozen=True)
class EmailRef:
    """Which email: a template name, a language and optionally one membership."""

    name: str
    locale: str
    membership_id: str = ""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise VersionError("an email name is lower-case letters, digits and '_'")
        if not _LOCALE.fullmatch(self.locale):
            raise VersionError(f"{self.locale!r} is not a language folder name")
        if self.membership_id and not _MEMBERSHIP.fullmatch(self.membership_id):
            raise VersionError("a membership id is letters, digits, '-' or '_'")

    @property
    def key(self) -> str:
        folder = f"memberships/{self.membership_id}/" if self.membership_id else ""
        return f"{folder}{self.locale}/{self.name}"

    @property
    def html(self) -> str:
        return f"{self.key}.html"

    @property
    def text(self) -> str:
        return f"{self.key}.txt"


@dataclass(frozen=True)
class Version:
    n: int
    at: float
    note: str
    html: str
    text: str

    @classmethod
    def from_entry(cls, entry: Mapping) -> Version:
        return cls(
            int(entry["n"]),
            float(entry["at"]),
            str(entry.get("note", "")),
            entry["html"],
            entry["text"],
        )


# --- the editor's four fields <-> the two files ----------------------------------------------


def _block(name: str) -> re.Pattern[str]:
    return re.compile(_BLOCK.replace("NAME", name), re.DOTALL)


def split_html(source: str) -> tuple[str, str, str]:
    """(subject, preheader, the rest) of an HTML part's source: the editor shows the
    subject and preheader blocks as fields of their own."""
    values = []
    for name in ("subject", "preheader"):
        match = _block(name).search(source)
        values.append(match.group(1) if match else "")
        if match:
            end = match.end()
            end += 1 if source[end : end + 1] == "\n" else 0
            source = source[: match.start()] + source[end:]
    return values[0], values[1], source


def join_html(subject: str, preheader: str, body: str) -> str:
    """The HTML part's source: the subject and preheader blocks after `{% extends %}`."""
    blocks = "".join(
        f"{{% block {name} %}}{' '.join(value.split())}{{% endblock %}}\n"
        for name, value in (("subject", subject), ("preheader", preheader))
        if value.strip()
    )
    body = body.replace("\r\n", "\n")
    match = _EXTENDS.match(body)
    if match:
        head = match.group(1) if match.group(1).endswith("\n") else match.group(1) + "\n"
        return head + blocks + body[match.end() :]
    return blocks + body


def check_sizes(**parts: str) -> None:
    for name, value in parts.items():
        limit = MAX_NOTE_CHARS if name == "note" else MAX_PART_CHARS
        if len(value) > limit:
            raise VersionError(f"the {name} is longer than {limit} characters")


def diff(a: Version | None, b: Version, a_label: str, b_label: str) -> list[str]:
    """Unified diff of both parts, a line per entry."""
    lines: list[str] = []
    for part in ("html", "text"):
        old = getattr(a, part).splitlines() if a else []
        new = getattr(b, part).splitlines()
        lines += difflib.unified_diff(
            old, new, f"{a_label} ({part})", f"{b_label} ({part})", lineterm="", n=2
        )
    return lines


# --- the loader -----------------------------------------------------------------------------


class VersionedLoader(BaseLoader):
    """Templates from the published versions in Redis, else from the files. `overlay`:
    sources that win over both (a draft being checked or previewed)."""

    def __init__(
        self,
        templates_dir: Path,
        store: Store | None,
        overlay: Mapping[str, str] | None = None,
        refresh: float = PUBLISHED_REFRESH_SECONDS,
    ) -> None:
        self.templates_dir = Path(templates_dir)
        self.files = FileSystemLoader(str(templates_dir))
        self.store = store
        self.overlay = dict(overlay or {})
        self.refresh = refresh
        self._published: dict[str, tuple[str, int]] = {}  # file name -> (source, version)
        self._read_at = float("-inf")

    def published(self) -> dict[str, tuple[str, int]]:
        """File name -> (source, version number), re-read at most every `refresh` s."""
        if self.store is None or time.monotonic() - self._read_at < self.refresh:
            return self._published
        try:
            sources = self.store.published_sources()
        except RedisError:
            return self._published  # keep sending what we had; Redis errors show elsewhere
        fresh: dict[str, tuple[str, int]] = {}
        for email, entry in sources.items():
            fresh[f"{email}.html"] = (entry["html"], int(entry["n"]))
            fresh[f"{email}.txt"] = (entry["text"], int(entry["n"]))
        # One assignment: a thread reading meanwhile (the worker's sweep) sees the old map
        # or the new one, never a half-filled one.
        self._published, self._read_at = fresh, time.monotonic()
        return fresh

    def has_template(self, name: str) -> bool:
        return (
            name in self.overlay
            or name in self.published()
            or (self.templates_dir / name).is_file()
        )

    def signature(self, name: str) -> tuple[str, int, int]:
        """Changes whenever what `name` loads changes (the safety net's memo)."""
        if name in self.overlay:
            return (name, -3, hash(self.overlay[name]))
        version = self.published().get(name)
        if version is not None:
            return (name, -2, version[1])
        try:
            st = (self.templates_dir / name).stat()
        except OSError:
            return (name, -1, -1)
        return (name, st.st_mtime_ns, st.st_size)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        # A file-like name, so errors point at `en/winback.html:12` like a file's would.
        filename = str(self.templates_dir / template)
        if template in self.overlay:
            return self.overlay[template], filename, lambda: True
        version = self.published().get(template)
        if version is not None:
            n = version[1]
            return version[0], filename, lambda: self.published().get(template, ("", 0))[1] == n
        try:
            source, path, file_uptodate = self.files.get_source(environment, template)
        except TemplateNotFound:
            raise
        return (
            source,
            path,
            lambda: template not in self.published() and bool(file_uptodate and file_uptodate()),
        )


def file_sources(templates_dir: Path, ref: EmailRef) -> tuple[str, str] | None:
    """The email's own files (not a fallback), or None."""
    html, text = templates_dir / ref.html, templates_dir / ref.text
    if html.is_file() and text.is_file():
        return html.read_text(encoding="utf-8"), text.read_text(encoding="utf-8")
    return None


def export(store: Store, out_dir: Path) -> list[str]:
    """Write every published version as files under `out_dir` (the templates folder's
    layout); returns the files written."""
    written = []
    for email, entry in sorted(store.published_sources().items()):
        for suffix, part in ((".html", "html"), (".txt", "text")):
            target = out_dir / f"{email}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(entry[part], encoding="utf-8")
            written.append(target.relative_to(out_dir).as_posix())
    return written
