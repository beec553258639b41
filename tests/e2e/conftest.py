"""The local stack as a separate process on a free port, driven over real HTTP (loopback only)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

from local.demo import call as http  # noqa: F401 - the tests' HTTP client
from local.demo import poll as wait_until  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
TIME_SCALE = "0.0005"  # Alipay's 4 minutes become 0.12 s
START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_env(port: int, local_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ALIPAY_"))}
    env.update(PORT=str(port), LOCAL_DIR=str(local_dir), SANDBOX_TIME_SCALE=TIME_SCALE, PYTHONUNBUFFERED="1")
    return env


@dataclass
class RunningStack:
    process: subprocess.Popen
    url: str
    log: Path

    def log_lines(self, needle: str) -> List[str]:
        return [line for line in self.log.read_text(encoding="utf-8").splitlines() if needle in line]

    def stop(self) -> None:
        """SIGTERM to the server (make's child when started through make, so make itself exits
        with the server's status), then wait; SIGKILL to the group we started only as a fallback."""
        if self.process.poll() is None:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids = [int(p) for p in children.read_text().split()] if children.exists() else []
            for pid in pids or [self.process.pid]:
                os.kill(pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start(command: List[str], port: int, local_dir: Path, log: Path, env: Optional[dict] = None) -> RunningStack:
    """``env``: variables set on top of ``stack_env`` (e.g. a slower ``SANDBOX_TIME_SCALE``)."""
    handle = log.open("wb")
    process = subprocess.Popen(
        command, cwd=ROOT, env={**stack_env(port, local_dir), **(env or {})}, stdout=handle, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    stack = RunningStack(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if http("GET", f"{stack.url}/health")[0] == 200:
                return stack
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    stack.stop()
    raise AssertionError(f"local stack did not become healthy:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def local_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("local")


@pytest.fixture(scope="module")
def stack(local_dir, tmp_path_factory):
    """``python -m local.run`` (what ``make run`` runs), on a free port."""
    running = start([sys.executable, "-m", "local.run"], free_port(), local_dir, tmp_path_factory.mktemp("log") / "stack.log")
    yield running
    running.stop()


