"""Gunicorn settings for the `web` process (read by the Procfile's `-c gunicorn.conf.py`).

Heroku conventions: bind 0.0.0.0:$PORT, size from WEB_CONCURRENCY. Threads, because a
webhook request mostly waits on one Redis round trip.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
graceful_timeout = 20
timeout = 30
accesslog = "-"
# %(U)s is the path without the query string: `?key=` secrets never reach the log.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
control_socket_disable = True
