"""How a Prometheus counter is stored: one field of the `metrics` hash per name and label
set, `<name>|<label>=<value>,...` (labels sorted), so every web and worker process adds to
the same totals with one HINCRBY."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

RECEIVED_METRIC = "farewell_events_received_total"  # webhooks by source, kind and outcome
EMAILS_METRIC = "farewell_emails_total"  # send attempts by transport and result


@lru_cache(maxsize=1024)
def _label_value(value: str) -> str:
    """Label values come from a small set (sources, kinds, transports, email templates such
    as en/winback): cleaned once."""
    return "".join(ch if ch.isalnum() or ch in "-_.:/" else "_" for ch in value)[:64]


def metric_field(name: str, labels: Mapping[str, object]) -> str:
    pairs = ",".join(f"{k}={_label_value(str(v))}" for k, v in sorted(labels.items()))
    return f"{name}|{pairs}"


def parse_metric_field(field_: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    name, _, pairs = field_.partition("|")
    labels = tuple(tuple(p.split("=", 1)) for p in pairs.split(",") if "=" in p)
    return name, labels  # type: ignore[return-value]
