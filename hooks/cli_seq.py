"""Operator commands for follow-up sequences:

flask --app hooks playbook check [--file PATH]
flask --app hooks member resume EMAIL
flask --app hooks suppress add EMAIL [--reason manual] | remove EMAIL | list
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from worker.compliance import require_postal_address
from worker.events import member_key
from worker.playbook import PlaybookError, Step, load_playbook
from worker.privacy import mask_email
from worker.reasons import load_reasons
from worker.sequences import record_comeback, suppress_member
from worker.settings import SettingsError

from .services import get_services

playbook_cli = AppGroup("playbook", help="The marketers' playbook (email_templates/playbook.toml).")
member_cli = AppGroup("member", help="Act on one member's follow-ups.")
suppress_cli = AppGroup("suppress", help="The suppression list: addresses never emailed.")


@playbook_cli.command("check")
@click.option("--file", "path", type=click.Path(path_type=Path), help="Another playbook file.")
def playbook_check(path: Path | None) -> None:
    """Validate the playbook; exit status 1 and one line per problem when invalid."""
    settings = get_services().settings
    path = path or settings.playbook_path
    reasons = [r.id for r in load_reasons(settings.reasons_path)]
    try:
        playbook = load_playbook(path, templates_dir=settings.templates_dir, reason_ids=reasons)
    except PlaybookError as exc:
        for line in exc.errors:
            click.echo(line, err=True)
        raise SystemExit(1) from exc
    try:
        require_postal_address(settings, playbook)
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(1) from exc
    plans = {"default": playbook.default} | {
        f"membership {mid}": steps for mid, steps in playbook.memberships.items()
    }
    click.echo(f"{path}: OK")
    for name, steps in plans.items():
        summary = ", ".join(
            f"{_variants(s)} (+{_delay(s.delay.total_seconds())}, {s.stream})" for s in steps
        )
        click.echo(f"  {name}: {summary}")
    for mid, name in playbook.membership_incentives.items():
        click.echo(f"  membership {mid} offers incentive {name}")


def _variants(step: Step) -> str:
    """`winback`, or an A/B test's shares: `winback 50% / winback_b 50%`."""
    total = sum(v.weight for v in step.variants)
    return " / ".join(f"{v.template} {v.weight / total:.0%}" for v in step.variants) or (
        step.template
    )


def _delay(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return "0"


@member_cli.command("resume")
@click.argument("email")
def member_resume(email: str) -> None:
    """The member is back: stop their follow-ups at once (recorded as a comeback)."""
    services = get_services()
    stopped = record_comeback(
        services.store,
        services.queue,
        member_key(email),
        time.time(),
        services.settings.won_back_days,
    )
    if not stopped:
        click.echo(f"{mask_email(email)}: no active follow-up sequence")
        return
    for s in stopped:
        click.echo(
            f"{mask_email(email)}: sequence {s.sequence_id} stopped, {s.outcome}, "
            f"{s.cancelled_jobs} pending step(s) cancelled"
        )


@suppress_cli.command("add")
@click.argument("email")
@click.option("--reason", default="manual", show_default=True)
def suppress_add(email: str, reason: str) -> None:
    """Never email this address again (and cancel its pending marketing steps)."""
    services = get_services()
    added, cancelled = suppress_member(services.store, services.queue, email, reason)
    state = "suppressed" if added else "was already suppressed"
    click.echo(f"{mask_email(email)} {state}; {cancelled} pending step(s) cancelled")


@suppress_cli.command("remove")
@click.argument("email")
def suppress_remove(email: str) -> None:
    """Allow emails to this address again (future sequences only)."""
    removed = get_services().store.unsuppress(email)
    click.echo(f"{mask_email(email)} {'removed' if removed else 'was not suppressed'}")


@suppress_cli.command("list")
def suppress_list() -> None:
    """Every suppressed address: hint (masked), reason, since."""
    entries = get_services().store.suppressions()
    for e in entries:
        since = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{e.hint or '(erased member)':30} {e.reason:16} {since}  {e.address_hash}")
    click.echo(f"{len(entries)} suppressed address(es)")


def init_app(app: Flask) -> None:
    for group in (playbook_cli, member_cli, suppress_cli):
        app.cli.add_command(group)
