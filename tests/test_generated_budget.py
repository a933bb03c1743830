"""FAREWELL_HYPOTHESIS_EXAMPLES: the knob for deep runs of the generated webhook tests."""

from __future__ import annotations

import pytest

from tests.generated import ENV, examples


def test_the_default_holds_without_the_variable(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert examples(1_000) == 1_000


def test_the_variable_sets_the_count(monkeypatch):
    monkeypatch.setenv(ENV, " 10000 ")
    assert examples(1_000) == 10_000


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1e4"])
def test_a_bad_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ValueError, match=ENV):
        examples(1_000)
