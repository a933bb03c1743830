"""What a worker process builds once and reuses for every job: settings, Redis, queue,
compiled templates, playbook and a mail transport (one SMTP connection / HTTP session).

Jobs call `runtime()`; tests install their own with `set_runtime()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from rq import Queue

from .mail import Transport, get_transport
from .playbook import Playbook, load_playbook
from .queues import make_queue, rq_connection
from .reasons import Reason, load_reasons
from .safety import SafeRenderer
from .settings import Settings
from .store import Store, connect
from .stripe_api import StripeClient


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def store(self) -> Store:
        return Store(connect(self.settings.redis_url, socket_timeout=5.0))

    @cached_property
    def queue(self) -> Queue:
        return make_queue(rq_connection(self.settings.redis_url), self.settings.queue_name)

    @cached_property
    def renderer(self) -> SafeRenderer:
        """Falls back to the last version that rendered when a template fails."""
        return SafeRenderer(self.settings.templates_dir, self.settings.default_locale, self.store)

    @cached_property
    def playbook(self) -> Playbook:
        return load_playbook(
            self.settings.playbook_path,
            templates_dir=self.settings.templates_dir,
            reason_ids=[r.id for r in self.reasons],
        )

    @cached_property
    def reasons(self) -> list[Reason]:
        return load_reasons(self.settings.reasons_path)

    @cached_property
    def transport(self) -> Transport:
        return get_transport(self.settings)

    @cached_property
    def stripe(self) -> StripeClient:
        return StripeClient(self.settings)

    def close(self) -> None:
        """Close the connections this runtime opened (the transport, Stripe's session);
        what was never built is left alone."""
        for name in ("transport", "stripe"):
            close = getattr(self.__dict__.get(name), "close", None)
            if close:
                close()


_current: Runtime | None = None


def runtime() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime(Settings.from_env())
    return _current


def set_runtime(rt: Runtime | None) -> None:
    global _current
    _current = rt
