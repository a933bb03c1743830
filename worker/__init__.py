"""Farewell's worker side: domain types, Redis store, RQ jobs, rendering and mail transports.

Nothing in this package imports Flask or `hooks`; the web app depends on it, never the reverse.
"""
