"""The README's demo commands work when pasted, in a fresh terminal, while `make run` runs.

Starts scripts/run.sh (what `make run` runs) on a free port with a throw-away SQLite database,
then runs every command of the README's demo code block as written (only the port differs), in an
environment without the demo's variables, as a second terminal would be.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sandbox.stack import free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs the project's .venv (make setup)")


def demo_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The demo", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    commands = [line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert commands, "the README's demo section has no command block"
    return commands


def fresh_terminal_env(**extra: str) -> dict[str, str]:
    """A shell's environment: none of the demo's or the tests' Django settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "DATABASE_URL", "REDIS_URL", "SANDBOX", "PUBLIC_BASE_URL"))}
    return {**keep, **extra}


def test_every_readme_demo_command_works_as_pasted(tmp_path):
    port = free_port()
    env_file = tmp_path / "local.env"
    run_env = fresh_terminal_env(
        PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", CONNECTOR_ENV_FILE=str(env_file), SKIP_APT="1"
    )
    log = (tmp_path / "run.log").open("w")
    demo = subprocess.Popen(["scripts/run.sh"], cwd=ROOT, env=run_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=180)
        for command in demo_commands():
            pasted = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            started = time.monotonic()
            done = subprocess.run(
                pasted, shell=True, cwd=ROOT, env=fresh_terminal_env(CONNECTOR_ENV_FILE=str(env_file)),
                capture_output=True, text=True, timeout=120,
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            assert time.monotonic() - started < 120
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=5)
        log.close()


def test_without_the_env_file_the_commands_fail_as_the_issue_saw(tmp_path):
    """The reason for var/local.env: a plain terminal has no DJANGO_DEBUG, so settings refuse to load."""
    done = subprocess.run(
        [".venv/bin/python", "manage.py", "check"], cwd=ROOT,
        env=fresh_terminal_env(CONNECTOR_ENV_FILE=str(tmp_path / "missing.env")), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0 and "DJANGO_SECRET_KEY" in done.stderr
