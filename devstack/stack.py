"""Start the Procfile's processes (and an embedded Redis) and stop them in order."""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import redis
import requests

from .redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ENV = "local.env"
LOCK_FILE = "make-run.lock"
LOCAL_POSTAL_ADDRESS = "Local test run (set FAREWELL_POSTAL_ADDRESS), nowhere"


def read_procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    commands = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            commands[match.group(1)] = match.group(2)
    return commands


# Generated once into var/local.env (mode 0600), like any setting the owner adds there.
GENERATED = {
    "FAREWELL_SECRET_KEY": lambda: secrets.token_urlsafe(24),
    # 16 characters: start-up refuses admin passwords under 12.
    "FAREWELL_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(12),
}
# Lines below this one are rewritten on every start: where this run's Redis, outbox and
# spool are, so `./farewell` (the CLI) reaches the running stack with no extra setup.
RUN_MARKER = "# --- written by make run on each start, for ./farewell; edit above this line ---"
RUN_NAMES = ("REDIS_URL", "FAREWELL_BASE_URL", "FAREWELL_OUTBOX_DIR", "FAREWELL_SPOOL_DIR")


def parse_env_lines(lines: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


def _split_local_env(path: Path) -> tuple[list[str], list[str]]:
    """(the owner's and generated lines, the last run's lines)."""
    lines = path.read_text().splitlines() if path.exists() else []
    if RUN_MARKER in lines:
        at = lines.index(RUN_MARKER)
        return lines[:at], lines[at + 1 :]
    return lines, []


def read_local_env(var_dir: Path) -> dict[str, str]:
    """Everything var/local.env holds, the last run's Redis URL and folders included:
    what `./farewell` loads (the environment still wins)."""
    own, run = _split_local_env(var_dir / LOCAL_ENV)
    return {**parse_env_lines(run), **parse_env_lines(own)}


def local_secrets(var_dir: Path) -> dict[str, str]:
    """The owner's settings and generated secrets from var/local.env (the last run's lines
    are not read back), generating the missing secrets once."""
    path = var_dir / LOCAL_ENV
    own, run = _split_local_env(path)
    values = parse_env_lines(own)
    missing = [name for name in GENERATED if not values.get(name)]
    if missing:
        own = [line for line in own if line.partition("=")[0].strip() not in missing]
        for name in missing:
            values[name] = GENERATED[name]()
            own.append(f"{name}={values[name]}")
        _write(path, own, run)
    return values


def record_run(var_dir: Path, env: Mapping[str, str]) -> None:
    """Rewrite the run's lines of var/local.env (no secrets: a Redis URL's password is
    kept only if the environment gave one, and then the file is the owner's own)."""
    path = var_dir / LOCAL_ENV
    own, _ = _split_local_env(path)
    _write(path, own, [f"{name}={env[name]}" for name in RUN_NAMES if env.get(name)])


def recorded_redis_port(var_dir: Path) -> int | None:
    _, run = _split_local_env(var_dir / LOCAL_ENV)
    match = re.match(r"redis://127\.0\.0\.1:(\d+)/", parse_env_lines(run).get("REDIS_URL", ""))
    return int(match.group(1)) if match else None


def _write(path: Path, own: list[str], run: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = own + ([RUN_MARKER, *run] if run else [])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    tmp.chmod(0o600)
    tmp.replace(path)


def port_taken(port: int) -> bool:
    """Someone listens on `port` already (a socket in TIME_WAIT does not count, as for
    gunicorn, which binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))  # noqa: S104 - where gunicorn binds
        except OSError:
            return True
    return False


def redis_unreachable(url: str) -> str | None:
    """Why Redis at `url` does not answer a PING, or None when it does."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis at {safe_url(url)} cannot be reached ({exc})"
    finally:
        client.close()
    return None


def safe_url(url: str) -> str:
    """A Redis URL without its password, for messages."""
    return re.sub(r"://[^@/]*@", "://", url)


class Stack:
    """redis (embedded unless REDIS_URL is given) + web + worker, as the Procfile says."""

    def __init__(
        self,
        var_dir: Path = ROOT / "var",
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        processes: tuple[str, ...] = ("web", "worker"),
        procfile: Mapping[str, str] | None = None,
        output: int | None = None,
        check_redis: bool = True,
    ) -> None:
        self.var_dir = Path(var_dir)
        self.base_env = dict(os.environ if env is None else env)
        self.port = port or int(self.base_env.get("PORT") or 0) or free_port()
        self.processes = processes
        self.procfile = dict(procfile or read_procfile())
        self.output = output
        self.check_redis = check_redis  # False: a REDIS_URL the processes never use (bench)
        self.redis: RedisServer | None = None
        self._lock: int | None = None
        self.children: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}

    def start(self) -> Stack:
        """Start Redis (unless REDIS_URL is given) and the processes. RuntimeError, with one
        line saying what to do, when the port is taken or the given Redis does not answer."""
        self._take_var_dir()
        if "web" in self.processes and port_taken(self.port):
            raise RuntimeError(
                f"port {self.port} is already in use (another `make run`?); "
                f"choose another port: PORT={self.port + 1} make run"
            )
        env = {**local_secrets(self.var_dir), **self.base_env}
        if env.get("REDIS_URL"):
            problem = redis_unreachable(env["REDIS_URL"]) if self.check_redis else None
            if problem:
                raise RuntimeError(f"{problem}; start it, or unset REDIS_URL for an embedded one")
        else:
            previous = recorded_redis_port(self.var_dir)
            port = previous if previous and not port_taken(previous) else None
            self.redis = RedisServer(self.var_dir / "redis", port=port).start()
            env["REDIS_URL"] = self.redis.url
        env.setdefault("FAREWELL_BASE_URL", f"http://localhost:{self.port}")
        env.setdefault("FAREWELL_OUTBOX_DIR", str(self.var_dir / "outbox"))
        env.setdefault("FAREWELL_SPOOL_DIR", str(self.var_dir / "spool"))
        # Marketing emails need one (CAN-SPAM). A placeholder only while mail stays on this
        # machine: with a real transport the worker refuses to start without the owner's.
        if env.get("FAREWELL_MAIL_TRANSPORT", "outbox") in ("outbox", "console"):
            env.setdefault("FAREWELL_POSTAL_ADDRESS", LOCAL_POSTAL_ADDRESS)
        env["PORT"] = str(self.port)
        # Only this machine, unless the owner says otherwise (HOST=0.0.0.0 for a staging site).
        env.setdefault("HOST", "127.0.0.1")
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env
        # A Redis URL the environment gave may hold a password: not written to the file.
        record_run(self.var_dir, {k: v for k, v in env.items() if k != "REDIS_URL" or self.redis})
        for name in self.processes:
            self.children[name] = subprocess.Popen(
                ["bash", "-c", f"exec {self.procfile[name]}"],
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=self.output,
                stderr=self.output,
            )
        return self

    def _take_var_dir(self) -> None:
        """One `make run` per var folder: two would run two Redis servers on one data
        directory (each overwriting the other's append-only file) and share the spool."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.var_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RuntimeError(
                f"another `make run` (pid {holder}) is using {self.var_dir}; stop it first, "
                "or give this one its own folder: FAREWELL_VAR_DIR=var2 PORT="
                f"{self.port + 1} make run"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd  # released when this process ends, however it ends

    def _release_var_dir(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until web answers /healthz 200 and, when a worker runs, its scheduler holds the
        queue: every process is up. RuntimeError naming the part that is not."""
        deadline = time.monotonic() + timeout
        waiting_for = "web did not answer /healthz"
        while time.monotonic() < deadline:
            self.check_alive()
            if "web" not in self.children:
                return
            try:
                reply = requests.get(f"{self.url}/healthz", headers=self._auth(), timeout=1)
                body = reply.json() if reply.status_code in (200, 503) else {}
            except requests.RequestException:
                reply, body = None, {}
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            if body.get("redis") == "down":
                waiting_for = f"Redis at {safe_url(self.env['REDIS_URL'])} cannot be reached"
            elif reply is not None and reply.status_code == 200:
                if "worker" not in self.children or body.get("scheduler") == "ok":
                    return
                waiting_for = "the worker did not take the queue (no scheduler)"
            time.sleep(0.1)
        raise RuntimeError(f"{waiting_for} within {timeout:.0f} s")

    def _auth(self) -> dict[str, str]:
        # The detailed /healthz (scheduler) may sit behind a bearer token.
        token = self.env.get("FAREWELL_METRICS_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def check_alive(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with status {proc.returncode} (its reason is above)"
                )

    def stop(self, timeout: float = 20.0) -> None:
        # Web first (stop taking webhooks), then the worker (finishes its job), Redis last.
        for name in ("web", "worker", *self.children):
            proc = self.children.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.redis:
            self.redis.stop()
            self.redis = None
        self._release_var_dir()
