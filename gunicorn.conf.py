"""Gunicorn settings for the `web` process (read by the Procfile's `-c gunicorn.conf.py`).

Heroku conventions: bind $HOST:$PORT (HOST defaults to 0.0.0.0; `make run` sets 127.0.0.1),
size from WEB_CONCURRENCY. Threads, because a
webhook request mostly waits on one Redis round trip; and a request reaches a thread only
once it has fully arrived (hooks/gunicorn_worker.py), so slow clients cannot hold the
threads: one that takes longer than WEB_READ_TIMEOUT seconds (default 10) gets a 408.
"""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # noqa: S104 - a PaaS router connects from outside
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "hooks.gunicorn_worker.BufferingWorker"  # gthread, buffering
graceful_timeout = 20
timeout = 30
# %(U)s is the path without the query string: `?key=` secrets never reach the log.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
control_socket_disable = True

# Gunicorn's own lines go through worker/logs.py's formatters: JSON objects, or text lines
# with control characters escaped (a path with %0d%0a must not write a forged line).
_json_logs = os.environ.get("FAREWELL_LOG_FORMAT", "text") == "json"
_text = "worker.logs.TextFormatter"
accesslog = None  # the handlers below write it
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "access": {"()": "worker.logs.JsonFormatter"}
        if _json_logs
        else {"()": _text, "fmt": "%(message)s"},
        "error": {"()": "worker.logs.JsonFormatter"}
        if _json_logs
        else {"()": _text, "fmt": "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"},
    },
    "handlers": {
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stdout",
        },
        "error": {
            "class": "logging.StreamHandler",
            "formatter": "error",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
    "root": {"level": "INFO", "handlers": []},
}


def on_starting(server):
    """Refuse to start on a bad setting with one clear line, before any worker boots (else
    each worker prints a traceback and gunicorn exits with "App failed to load")."""
    from worker.settings import Settings, SettingsError

    try:
        Settings.from_env()
    except SettingsError as exc:
        server.log.error("refusing to start: %s", exc)
        raise SystemExit(2) from None
