"""Bodies without a Content-Length (`Transfer-Encoding: chunked`) get the same size limit.

Werkzeug 3.1 reads such a body only up to `max_content_length` and then stops without an
error, so an oversized chunked body would be cut short and parsed. This middleware reads it
first, up to one byte past the largest limit any endpoint allows, and hands it on with the
Content-Length it turned out to have: from there Werkzeug's own check answers 413 exactly
as for a body that announced its length.
"""

from __future__ import annotations

from collections.abc import Iterable
from io import BytesIO
from typing import Any

from werkzeug.wsgi import get_content_length

_READ_SIZE = 64 * 1024


class FramedBody:
    """WSGI middleware: give every chunked request a Content-Length, reading at most
    `limit + 1` bytes of it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        # Without wsgi.input_terminated the server does not end the stream for us and
        # Werkzeug reads nothing, which is safe as it is.
        if get_content_length(environ) is None and environ.get("wsgi.input_terminated"):
            body = read_at_most(environ["wsgi.input"], self.limit + 1)
            environ["wsgi.input"] = BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # Werkzeug ignores Content-Length while this says chunked; the body is whole now.
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)


def read_at_most(stream: Any, size: int) -> bytes:
    """Up to `size` bytes of `stream`, fewer only when it ends first."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        part = stream.read(min(left, _READ_SIZE))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
