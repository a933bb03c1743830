"""The app's shared resources, built once per app and kept on `app.extensions`.

Like flaskr's `get_db()`, but for Redis, the RQ queue and the spool. Clients connect
lazily, so building the app never needs Redis to be up.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import Queue

from worker.events import Event
from worker.intake import Outcome, accept, submit
from worker.queues import make_queue, rq_connection
from worker.reasons import Reason, load_reasons
from worker.settings import Settings
from worker.store import RECEIVED_METRIC, Store, connect

from .spool import ReplayResult, Spool

log = logging.getLogger(__name__)
EXTENSION = "farewell"


@dataclass
class Services:
    settings: Settings
    store: Store
    queue: Queue
    spool: Spool
    _stop: threading.Event = field(default_factory=threading.Event)

    @cached_property
    def reasons(self) -> list[Reason]:
        """reasons.toml, read once per process."""
        return load_reasons(self.settings.reasons_path)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        return cls(
            settings=settings,
            store=Store(connect(settings.redis_url)),
            queue=make_queue(rq_connection(settings.redis_url), settings.queue_name),
            spool=Spool(settings.spool_dir),
        )

    def submit(self, event: Event, *, counted: bool = False) -> Outcome:
        return submit(self.store, self.queue, event, self.settings.dedupe_ttl, counted=counted)

    def accept(self, event: Event, *, counted: bool = False) -> tuple[Outcome, str]:
        """submit, also returning the event id as recorded (with its state revision)."""
        return accept(self.store, self.queue, event, self.settings.dedupe_ttl, counted=counted)

    def replay_spool(self) -> ReplayResult:
        def submit_one(event: Event) -> bool:
            new = self.submit(event) is not Outcome.DUPLICATE
            result = "replayed" if new else "duplicate"
            self.store.count("farewell_spool_replayed_total", result=result)
            if new:
                self.store.count(
                    RECEIVED_METRIC,
                    source=event.source,
                    kind=event.kind.value,
                    status="spooled",
                )
            return new

        return self.spool.replay(submit_one)

    def start_replayer(self) -> None:
        """Replay the spool in the background whenever Redis is back."""
        interval = self.settings.spool_replay_interval
        if interval <= 0:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                if not self.spool.files():
                    continue
                try:
                    # Claim nothing while Redis is down: a claimed file waits for its owner.
                    self.store.redis.ping()
                    result = self.replay_spool()
                except RedisError:
                    continue  # still down; the claimed files wait for the next round
                except Exception:  # the replayer must outlive any surprise; next round retries
                    log.exception("spool replay failed")
                    continue
                if result.replayed or result.duplicates:
                    log.info("spool replayed: %s", result)

        threading.Thread(target=loop, name="spool-replay", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def init_app(app: Flask, settings: Settings) -> Services:
    services = Services.build(settings)
    app.extensions[EXTENSION] = services
    return services


def get_services() -> Services:
    return current_app.extensions[EXTENSION]
