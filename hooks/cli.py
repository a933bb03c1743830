"""Operator commands: `flask --app hooks <group> <command>`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from .report import report
from .services import get_services

spool_cli = AppGroup("spool", help="The local spool of events received while Redis was down.")


@spool_cli.command("replay")
def spool_replay() -> None:
    """Submit every spooled event to Redis now (duplicates are dropped)."""
    result = get_services().replay_spool()
    click.echo(
        f"replayed {result.replayed}, duplicates {result.duplicates}, "
        f"unreadable {result.unreadable}"
    )


@spool_cli.command("status")
def spool_status() -> None:
    """How many events wait in the spool."""
    click.echo(f"{get_services().spool.backlog()} event(s) waiting")


def init_app(app: Flask) -> None:
    app.cli.add_command(spool_cli)
    app.cli.add_command(report)
