"""At most one of something per key per interval (survey-answer notifications per sequence).

The first call in an interval opens a window and may act now; later calls in the same
window learn when it ends, so that one follow-up can act then.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from .store import PREFIX

# Opens a window unless one is open: a GET then a SET from two web processes could both
# open it (two notifications for one resubmitted form).
# KEYS[1]: the window's key. ARGV[1]: now (Unix seconds, float text). ARGV[2]: interval (s).
# Returns {1, now} when this call opened the window, else {0, start of the open window}.
_OPEN_SCRIPT = """
local start = redis.call('GET', KEYS[1])
if start then return {0, start} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {1, ARGV[1]}
"""


def window_key(name: str, key: str) -> str:
    return f"{PREFIX}throttle:{name}:{key}"


@dataclass(frozen=True)
class Window:
    opened: bool  # this call opened it: act now
    ends_at: float  # Unix seconds: when a follow-up may act


def open_window(redis: Redis, name: str, key: str, interval: int, now: float) -> Window:
    script = redis.register_script(_OPEN_SCRIPT)  # EVALSHA, loading the script once
    opened, start = script(keys=[window_key(name, key)], args=[repr(now), interval])
    return Window(bool(opened), float(start) + interval)


def restart_window(redis: Redis, name: str, key: str, interval: int, now: float) -> None:
    """A follow-up acted: the next interval starts now."""
    redis.set(window_key(name, key), repr(now), ex=interval)
