"""What `make run` tells the owner to paste into each plugin (pure)."""

from __future__ import annotations

from devstack.__main__ import other_source_lines

BASE = {"FAREWELL_BASE_URL": "http://localhost:5000/"}


def test_only_memberpress_means_no_other_lines():
    assert other_source_lines({**BASE, "FAREWELL_MEMBERPRESS_KEY": "k"}) == []


def test_each_enabled_source_gets_its_url_and_secrets_stay_unprinted():
    env = {
        **BASE,
        "FAREWELL_WOOCOMMERCE_SECRET": "wc-secret-123",
        "FAREWELL_PMPRO_KEY": "pm-key-456",
        "FAREWELL_STRIPE_SECRET": "whsec_stripe789",
    }
    lines = other_source_lines(env)
    assert [line.split(":")[0].strip() for line in lines] == ["woocommerce", "pmpro", "stripe"]
    assert "http://localhost:5000/hooks/woocommerce " in lines[0]
    # PMPro's add-on signs nothing: the key can only travel in the URL it is given.
    assert "http://localhost:5000/hooks/pmpro?key=pm-key-456" in lines[1]
    assert not any("wc-secret-123" in line or "whsec_stripe789" in line for line in lines)
