"""A person's requests about their data (GDPR / LGPD):

flask --app hooks privacy export EMAIL   everything Farewell holds about the address, as JSON
flask --app hooks privacy forget EMAIL   erase it, as a `member-deleted` event does
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from worker.personal_data import export
from worker.privacy import mask_email
from worker.retention import forget

from .services import get_services

privacy_cli = AppGroup("privacy", help="A person's data: export it, or forget it.")


@privacy_cli.command("export")
@click.argument("email")
def privacy_export(email: str) -> None:
    """Print everything stored about EMAIL as JSON (member, events, cancellations,
    sequences with their survey answers and sends, suppression, incentive codes)."""
    click.echo(json.dumps(export(get_services().store.redis, email), indent=2, sort_keys=True))


@privacy_cli.command("forget")
@click.argument("email")
def privacy_forget(email: str) -> None:
    """Erase EMAIL: cancel its pending emails and delete its member record, events,
    sequences, survey answers and send log entries. Cancellations stay counted without
    who they were; a suppression stays, keyed by a hash, so the address is never mailed."""
    services = get_services()
    cancelled, deleted = forget(services.store, services.queue, email)
    suppressed = services.store.is_suppressed(email)
    click.echo(
        f"{mask_email(email)}: {deleted} key(s) deleted, {cancelled} pending step(s) cancelled"
        + ("; still suppressed (by a hash of the address)" if suppressed else "")
    )
