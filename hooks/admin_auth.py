"""HTTP basic auth for the owner's pages: user `admin`, password FAREWELL_ADMIN_PASSWORD.

Without a password the admin does not exist (404), rather than being open.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any

from flask import Response, abort, request

from .services import get_services

ADMIN_USER = "admin"
REALM = 'Basic realm="Farewell admin", charset="UTF-8"'


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        password = get_services().settings.admin_password
        if not password:
            abort(404)
        auth = request.authorization
        ok = (
            auth is not None
            and auth.type == "basic"
            and hmac.compare_digest((auth.username or "").encode(), ADMIN_USER.encode())
            and hmac.compare_digest((auth.password or "").encode(), password.encode())
        )
        if not ok:
            return Response(
                "Authentication required.\n",
                401,
                {"WWW-Authenticate": REALM},
                mimetype="text/plain",
            )
        return view(*args, **kwargs)

    return wrapped
