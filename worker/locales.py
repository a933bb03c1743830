"""The languages Farewell writes in, and how a plugin's locale tag maps onto them."""

from __future__ import annotations

# Tag (lower case, `_` separators) or its language part -> our locale.
_LOCALES = {"en": "en", "pt": "pt_BR", "pt_br": "pt_BR"}


def normalize_locale(value: str) -> str | None:
    """'pt-BR', 'pt_BR', 'pt' -> 'pt_BR'; 'en_US' -> 'en'; unknown -> None."""
    if not value:
        return None
    key = value.replace("-", "_").lower()
    return _LOCALES.get(key) or _LOCALES.get(key.split("_")[0])
