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


jobs_cli = AppGroup("jobs", help="RQ jobs: the failed ones, and sending them again.")


@jobs_cli.command("failed")
def jobs_failed() -> None:
    """List the jobs in RQ's failed registry (e.g. sends stopped by a mail config error)."""
    from worker.joblist import failed_jobs

    services = get_services()
    entries = failed_jobs(services.queue)
    for entry in entries:
        click.echo(f"{entry.job_id}  {entry.reason}")
    click.echo(f"{len(entries)} failed job(s)")


@jobs_cli.command("retry-failed")
def jobs_retry_failed() -> None:
    """Requeue every failed job, once the cause (a bad API key, say) is fixed."""
    from worker.joblist import retry_failed

    services = get_services()
    requeued = retry_failed(services.queue)
    services.store.clear_send_error()
    services.store.clear_stripe_error()
    click.echo(f"requeued {requeued} job(s)")


def init_app(app: Flask) -> None:
    from . import cli_seq
    from .privacy_cli import privacy_cli
    from .templates_cli import templates_cli

    app.cli.add_command(spool_cli)
    app.cli.add_command(jobs_cli)
    cli_seq.init_app(app)
    app.cli.add_command(templates_cli)
    app.cli.add_command(report)
    app.cli.add_command(privacy_cli)
