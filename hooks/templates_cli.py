"""`flask --app hooks templates check|preview|text-from-html`: the marketers' tools for emails."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from worker.mail.errors import MailError
from worker.playbook import PlaybookError
from worker.template_check import check_templates
from worker.template_lint import text_from_html
from worker.versions import export

from .email_previews import PreviewError, Previews, preview_page
from .services import get_services

templates_cli = AppGroup("templates", help="Check and preview the email templates.")


def _previews() -> Previews:
    services = get_services()
    return Previews(services.settings, store=services.store)  # published versions win


@templates_cli.command("check")
def templates_check() -> None:
    """Render every email in every language and membership override with sample data;
    exit 1 on any problem."""
    previews = _previews()
    settings = previews.settings
    try:
        report = check_templates(settings, previews.playbook, previews.reasons)
    except (PlaybookError, OSError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for problem in report.problems:
        click.echo(str(problem), err=problem.severity == "error")
    summary = (
        f"{settings.templates_dir}: {report.renders} render(s) checked, "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    if not report.ok:
        click.echo(summary, err=True)
        sys.exit(1)
    click.echo(summary + " — all good")


@templates_cli.command("preview")
@click.argument("name")
@click.option("--locale", default=None, help="Language folder, e.g. pt_BR (default: the default).")
@click.option("--membership", default="", help="Membership id, to use its overrides.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    show_default=True,
    help="File to write the HTML preview to ('-' prints it).",
)
def templates_preview(name: str, locale: str | None, membership: str, out: str) -> None:
    """Write a standalone HTML page with the subject, HTML and text of email NAME."""
    previews = _previews()
    locale = locale or previews.settings.default_locale
    try:
        previews.validate(name, locale, membership)
    except (PreviewError, PlaybookError) as exc:
        raise click.UsageError(str(exc)) from exc
    preview = previews.render(name, locale, membership)
    page = preview_page(preview)
    if out == "-":
        click.echo(page)
    else:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(page)
        click.echo(f"wrote {out}: {preview.email.subject if preview.email else 'error'}")
    if preview.error:
        click.echo(f"error: {name}: {preview.error}", err=True)
        sys.exit(1)


@templates_cli.command("send-test")
@click.argument("name")
@click.option("--to", "to", default=None, help="Address (default: FAREWELL_ADMIN_EMAIL).")
@click.option("--locale", default=None, help="Language folder, e.g. pt_BR (default: the default).")
@click.option("--membership", default="", help="Membership id, to use its overrides.")
def templates_send_test(name: str, to: str | None, locale: str | None, membership: str) -> None:
    """Send email NAME with sample data through the configured transport, as the admin's
    "send me a test" does. Its survey and unsubscribe links open sample pages."""
    previews = _previews()
    to = to or previews.settings.admin_email
    if not to:
        raise click.UsageError("give --to, or set FAREWELL_ADMIN_EMAIL")
    locale = locale or previews.settings.default_locale
    try:
        previews.validate(name, locale, membership)
    except (PreviewError, PlaybookError) as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        message_id = previews.send_test(name, locale, membership, to)
    except MailError as exc:
        raise click.ClickException(f"the test of {name} could not be sent: {exc}") from exc
    click.echo(
        f"sent a test of {name} ({locale}) to {to} via {previews.settings.mail_transport}: "
        f"{message_id}"
    )


@templates_cli.command("text-from-html")
@click.argument("html_file")
@click.option(
    "--write", is_flag=True, help="Replace the matching .txt file instead of printing it."
)
def templates_text_from_html(html_file: str, write: bool) -> None:
    """Generate the text part of HTML_FILE (e.g. en/winback.html, relative to the templates
    folder) from its HTML part: same words, same variables, links as `words: address`.
    Read it over before going live."""
    root = get_services().settings.templates_dir.resolve()
    source_path = (root / html_file).resolve()
    if (
        not source_path.is_relative_to(root)
        or source_path.suffix != ".html"
        or not source_path.is_file()
    ):
        raise click.UsageError(f"{html_file}: no such .html file in {root}")
    text = text_from_html(source_path.read_text(encoding="utf-8"))
    if not write:
        click.echo(text, nl=False)
        return
    target = source_path.with_suffix(".txt")
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target.relative_to(root).as_posix()}; run `templates check` next")


@templates_cli.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def templates_export(out_dir: Path) -> None:
    """Write the versions published in the admin editor as files under OUT_DIR (laid out
    like the templates folder: en/winback.html, memberships/3006/en/winback.txt, ...), to
    commit them as the new defaults."""
    written = export(get_services().store, out_dir)
    for name in written:
        click.echo(f"wrote {name}")
    click.echo(f"{len(written) // 2} published email(s) written to {out_dir}")
