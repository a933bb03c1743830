"""The load generator: N signed MemberPress `subscription-stopped` webhooks, one per
distinct member, from C concurrent clients spread over a few processes. Like WordPress,
each webhook gets its own connection (HTTP/1.0) unless `keepalive` is asked for.

Each process runs a small asyncio HTTP/1.1 client over raw streams (no requests/aiohttp
machinery per call), so on a 2-core box the generator costs far less than the server it
measures. Latency is the time from writing a request to reading the whole reply.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import queue
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field

MARK = "__N__"


def member_email(i: int) -> str:
    return f"member-{i}@bench.example"


def body_template() -> str:
    """A realistic MemberPress subscription-stopped body; MARK is replaced per member."""
    payload = {
        "event": "subscription-stopped",
        "type": "subscription",
        "data": {
            "coupon": "0",
            "membership": {
                "id": "3006",
                "title": "Gold Club",
                "status": "publish",
                "price": "20.00",
                "period": "1",
                "period_type": "months",
            },
            "member": {
                "id": MARK,
                "email": member_email(MARK),  # type: ignore[arg-type]
                "username": f"member{MARK}",
                "registered_at": "2019-04-18 16:47:14",
                "first_name": "Member",
                "last_name": MARK,
                "display_name": f"Member {MARK}",
            },
            "id": f"9{MARK}",
            "subscr_id": f"sub_{MARK}",
            "gateway": "stripe",
            "user_id": MARK,
            "product_id": "3006",
            "price": "20.00",
            "status": "cancelled",
            "created_at": "2024-01-02 10:00:00",
            "total": "20.00",
        },
    }
    return json.dumps(payload)


def request_bytes(host: str, path: str, key: str, body: str, keepalive: bool = False) -> bytes:
    """HTTP/1.0 by default, one connection per webhook, as WordPress sends them (its HTTP
    API defaults to 1.0); HTTP/1.1 keep-alive with `keepalive`."""
    data = body.encode()
    version = "1.1" if keepalive else "1.0"
    head = (
        f"POST {path} HTTP/{version}\r\nHost: {host}\r\nMEMBERPRESS-WEBHOOK-KEY: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


@dataclass
class LoadResult:
    latencies: array = field(default_factory=lambda: array("d"))  # seconds
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # connection failures (the request was re-sent)
    first_sent: float = 0.0  # time.time()
    last_reply: float = 0.0

    def merge(self, other: LoadResult) -> None:
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.errors += other.errors
        self.first_sent = min(x for x in (self.first_sent, other.first_sent) if x) or 0.0
        self.last_reply = max(self.last_reply, other.last_reply)


async def _connection(host: str, port: int, jobs, make, result: LoadResult, keepalive) -> None:
    reader = writer = None
    perf = time.perf_counter
    for i in jobs:
        payload = make(i)
        for _attempt in range(3):
            try:
                t0 = perf()  # a new connection's set-up counts: a plugin pays for it too
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(payload)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                close = False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                if length:
                    await reader.readexactly(length)
                result.latencies.append(perf() - t0)
                result.statuses[int(head[9:12])] += 1
                if close or not keepalive:
                    writer.close()
                    writer = None
                break
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                # A plugin re-sends on a network error; dedupe makes that safe.
                result.errors += 1
                if writer is not None:
                    writer.close()
                writer = None
    if writer is not None:
        writer.close()


async def _run(host, port, indices, connections, make, keepalive) -> LoadResult:
    result = LoadResult()
    jobs = iter(indices)  # shared: each connection takes the next member
    result.first_sent = time.time()
    await asyncio.gather(
        *(_connection(host, port, jobs, make, result, keepalive) for _ in range(connections))
    )
    result.last_reply = time.time()
    return result


def _process(host, port, path, key, indices, connections, keepalive, ready, go, out) -> None:
    template = body_template()
    hostname = f"{host}:{port}"

    def make(i: int) -> bytes:
        return request_bytes(hostname, path, key, template.replace(MARK, str(i)), keepalive)

    ready.put(True)
    go.wait()
    out.put(asyncio.run(_run(host, port, indices, connections, make, keepalive)))


def fire(
    host: str,
    port: int,
    *,
    n: int,
    concurrency: int,
    key: str,
    path: str = "/hooks/memberpress",
    processes: int = 2,
    start: int = 0,
    keepalive: bool = False,
) -> LoadResult:
    """Send members start..start+n-1 with `concurrency` connections in all."""
    processes = max(1, min(processes, concurrency))
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    out = ctx.Queue()
    ready = ctx.Queue()
    procs = []
    for p in range(processes):
        conns = concurrency // processes + (1 if p < concurrency % processes else 0)
        indices = range(start + p, start + n, processes)
        proc = ctx.Process(
            target=_process,
            args=(host, port, path, key, indices, conns, keepalive, ready, go, out),
            daemon=True,
        )
        proc.start()
        procs.append(proc)
    for _ in procs:  # every client process is up before the clock starts
        ready.get(timeout=60)
    go.set()
    total = LoadResult()
    received = 0
    while received < len(procs):
        try:
            total.merge(out.get(timeout=1.0))
            received += 1
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise RuntimeError("a load-generator process failed (see its traceback)") from None
    for proc in procs:
        proc.join()
    return total
