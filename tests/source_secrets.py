"""Test secrets for the non-MemberPress sources (merged into the `settings` fixture)."""

import base64

WOOCOMMERCE_SECRET = "wc-secret-7Hk2pQ"
PMPRO_KEY = "pmpro-key-Z8s1Lx0v"
STRIPE_SECRET = "whsec_stripe_test_5b1f0e"
STRIPE_API_KEY = "rk_test_farewell_51Hx"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode()

# Merged into the `settings` fixture (tests/conftest.py), so every source is enabled.
SOURCE_SETTINGS = {
    "woocommerce_secret": WOOCOMMERCE_SECRET,
    "pmpro_key": PMPRO_KEY,
    "stripe_secret": STRIPE_SECRET,
    "stripe_api_key": STRIPE_API_KEY,
    "stripe_api_base": "http://127.0.0.1:9",  # tests that look customers up point it at theirs
    "stripe_timeout": 2.0,
    "standard_secret": STANDARD_SECRET,
}
