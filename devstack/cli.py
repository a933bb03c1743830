"""`./farewell <command>`: the operator commands (`flask --app hooks <command>`) with
var/local.env loaded under the environment, so they reach what `make run` started (its
Redis, outbox and spool) with no extra setup. In production, where there is no
var/local.env, it is the same as `flask --app hooks`."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from flask.cli import FlaskGroup

from .stack import ROOT, read_local_env


def main(argv: list[str] | None = None) -> int:
    var_dir = Path(os.environ.get("FAREWELL_VAR_DIR") or ROOT / "var")
    for name, value in read_local_env(var_dir).items():
        os.environ.setdefault(name, value)  # the environment wins
    # The app's start-up look at Redis's settings is for web and worker (and /healthz): a
    # command that needs Redis says itself, in one line, when Redis does not answer.
    logging.getLogger("worker.redis_policy").setLevel(logging.ERROR)
    from hooks import create_app

    cli = FlaskGroup(
        name="farewell",
        create_app=lambda: create_app(),
        add_default_commands=False,
        load_dotenv=False,
        help="Farewell's operator commands (flask --app hooks, plus var/local.env).",
    )
    return cli.main(args=argv, prog_name="./farewell")


if __name__ == "__main__":
    sys.exit(main())
