"""Start the real deployment shape on loopback: gunicorn (N workers) + M `manage.py qcluster`.

Used by the end-to-end tests (tests/e2e/) and by bench/load.py, which must not import from tests/. Every process is started in its own session and
is always stopped (SIGTERM, then SIGKILL) when the context exits, whatever happened.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    base_url: str
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)
    clusters: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def start_cluster(self) -> subprocess.Popen:
        process = self.start(f"qcluster-{len(self.clusters)}", [PYTHON, "manage.py", "qcluster"])
        self.clusters.append(process)
        return process

    def kill_clusters(self) -> None:
        """SIGKILL every qcluster and its workers at once: a machine losing its worker processes."""
        for process in self.clusters:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        self.processes = [p for p in self.processes if p not in self.clusters]
        self.clusters = []

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.log_dir.glob("*.log")))

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)


def stack_env(*, database_url: str, redis_url: str = "", extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every process: production settings, sandbox on, no throttling in the way."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "connector_site.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SANDBOX_ENABLED": "1",
            "SECURE_COOKIES": "0",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "PUBLIC_ENDPOINT_RATE": "1000000/minute",
            "INTERCOM_CLIENT_SECRET": settings.INTERCOM_CLIENT_SECRET,
            "LOG_LEVEL": "INFO",
            "Q_WORKERS": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def wait_http(url: str, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


@contextmanager
def running_stack(
    env: Mapping[str, str], *, port: int | None = None, web_workers: int = 2, clusters: int = 2, startup_timeout: float = 60
) -> Iterator[Stack]:
    port = port or free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="connector-stack-"))
    stack = Stack(base_url=f"http://127.0.0.1:{port}", log_dir=log_dir, env=dict(env))
    try:
        stack.start(
            "web",
            [
                PYTHON, "-m", "gunicorn", "sandbox.probe_wsgi:application",
                "--workers", str(web_workers), "--bind", f"127.0.0.1:{port}",
                "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning",
            ],
        )
        for _ in range(clusters):
            stack.start_cluster()
        wait_http(f"{stack.base_url}/health", timeout=startup_timeout)
        yield stack
    finally:
        for process in stack.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in stack.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=5)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the process's own session: gunicorn's and qcluster's children too
    except ProcessLookupError:
        pass
