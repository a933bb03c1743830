"""What `make run` tells the owner to paste into each plugin (pure)."""

from __future__ import annotations

from devstack.__main__ import memberpress_lines, other_source_lines

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


def test_without_a_key_memberpress_says_copy_its_key_into_farewell():
    text = memberpress_lines(BASE, False, "var/local.env", "http://localhost:5000")
    assert "not connected yet" in text
    assert "copy the key MemberPress shows into Farewell" in text
    assert "http://localhost:5000/admin/connections" in text
    assert "FAREWELL_MEMBERPRESS_KEY=<key> in\n  var/local.env" in text


def test_a_key_is_never_printed_only_where_it_comes_from():
    env = {**BASE, "FAREWELL_MEMBERPRESS_KEY": "aB3dE5gH7j"}
    text = memberpress_lines(env, False, "var/local.env", "http://localhost:5000")
    assert "connected, key from FAREWELL_MEMBERPRESS_KEY" in text and "aB3dE5gH7j" not in text
    stored = memberpress_lines(BASE, True, "var/local.env", "http://localhost:5000")
    assert "key from the Connections page" in stored
