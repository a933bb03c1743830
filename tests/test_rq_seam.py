"""RQ's internals are used in worker/rq_seam.py only: the guard that keeps it so. The
assumptions themselves are pinned by the tests the seam's docstring names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import rq

ROOT = Path(__file__).resolve().parent.parent
SEAM = ROOT / "worker" / "rq_seam.py"
CODE_DIRS = ("worker", "hooks", "bench", "devstack")

# What only the seam may use: RQ's key names, private attributes of its objects, and the
# parts of RQ that are not its public API (executions, the scheduler class, its utils).
INTERNALS = re.compile(
    r"""["']rq:"""
    r"|\._stop_requested|\.retries_left\s*=[^=]|\.job_class\b|\.redis_queues_keys\b"
    r"|\.to_dict\(\)\.items|\bparse_composite_key\b|\bRQScheduler\b"
    r"|\bget_locking_key\b|from rq\.executions|from rq\.utils|from rq\.scheduler"
    r"|def perform_job\("
)


def _sources(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py") if p != SEAM)


@pytest.mark.parametrize("path", _sources(*CODE_DIRS), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_but_the_seam_uses_rqs_internals(path):
    hits = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if INTERNALS.search(line)
    ]
    assert hits == [], "move these into worker/rq_seam.py"


def test_no_test_names_an_rq_key():
    """Tests reach RQ's keys through the seam or RQ's API, so a changed key prefix (RQ 3
    makes it configurable) cannot leave a test checking a key nobody writes."""
    here = Path(__file__).resolve()
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _sources("tests")
        if p != here
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"""["']rq:""", line)
    ]
    assert hits == []


def test_the_guard_finds_what_it_looks_for():
    for line in ('r.llen("rq:queue:x")', "worker._stop_requested = True", "job.retries_left = 0"):
        assert INTERNALS.search(line), line
    assert not INTERNALS.search("assert job.retries_left == 4")


def test_the_seam_names_the_pinned_rq():
    pinned = re.search(r"^rq==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and pinned.group(1) == rq.__version__
    assert f"rq {rq.__version__}" in SEAM.read_text()
