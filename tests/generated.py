"""How many examples the generated (Hypothesis) webhook tests try.

By default enough to catch what breaks easily, in seconds, so `make test` stays quick on a
busy laptop. `FAREWELL_HYPOTHESIS_EXAMPLES=N` makes each of them try N instead, for a deep
run: `FAREWELL_HYPOTHESIS_EXAMPLES=10000 make test-faults`. Hypothesis keeps every failing
example it found in `.hypothesis/` and tries it first next time, whatever N.
"""

from __future__ import annotations

import os

ENV = "FAREWELL_HYPOTHESIS_EXAMPLES"


def examples(default: int) -> int:
    """`default`, unless the environment asks for a deeper (or shallower) run."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return default
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"{ENV} must be a whole number of examples, not {value!r}") from None
    if count < 1:
        raise ValueError(f"{ENV} must be at least 1, not {count}")
    return count
