"""Start the Procfile's processes (and an embedded Redis) and stop them in order."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from .redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ENV = "local.env"


def read_procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    commands = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            commands[match.group(1)] = match.group(2)
    return commands


def local_secrets(var_dir: Path) -> dict[str, str]:
    """Secrets for a local run, generated once and kept in var/local.env (mode 0600)."""
    path = var_dir / LOCAL_ENV
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep:
                values[name.strip()] = value.strip()
    wanted = ("FAREWELL_SECRET_KEY", "FAREWELL_MEMBERPRESS_KEY")
    if any(name not in values for name in wanted):
        for name in wanted:
            values.setdefault(name, secrets.token_urlsafe(24))
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values


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
    ) -> None:
        self.var_dir = Path(var_dir)
        self.base_env = dict(os.environ if env is None else env)
        self.port = port or int(self.base_env.get("PORT") or 0) or free_port()
        self.processes = processes
        self.procfile = dict(procfile or read_procfile())
        self.output = output
        self.redis: RedisServer | None = None
        self.children: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}

    def start(self) -> Stack:
        env = {**local_secrets(self.var_dir), **self.base_env}
        if not env.get("REDIS_URL"):
            self.redis = RedisServer(self.var_dir / "redis").start()
            env["REDIS_URL"] = self.redis.url
        env.setdefault("FAREWELL_BASE_URL", f"http://localhost:{self.port}")
        env.setdefault("FAREWELL_OUTBOX_DIR", str(self.var_dir / "outbox"))
        env.setdefault("FAREWELL_SPOOL_DIR", str(self.var_dir / "spool"))
        env["PORT"] = str(self.port)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env
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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if "web" not in self.children:
                return
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"web did not answer /healthz within {timeout} s")

    def check_alive(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode}")

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
