"""Operator commands: `flask --app hooks <group> <command>`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import click
import redis
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


def _without_password(url: str) -> str:
    return re.sub(r"://[^@/]*@", "://", url)


def redis_errors_in_one_line(group: click.Group, redis_url: str) -> None:
    """Every command (nested ones too): a Redis that cannot be reached ends it with one line
    naming the URL, not a traceback. Called once all commands are registered."""
    where = _without_password(redis_url)
    for command in group.commands.values():
        if isinstance(command, click.Group):
            redis_errors_in_one_line(command, redis_url)
        elif command.callback is not None and not getattr(command.callback, "_guarded", False):
            command.callback = _guarded(command.callback, where)


def _guarded(callback: Callable[..., Any], where: str) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise click.ClickException(
                f"Redis at {where} cannot be reached ({exc}). Is `make run` running? "
                "Elsewhere, set REDIS_URL."
            ) from None

    run._guarded = True  # type: ignore[attr-defined]
    return run


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
