"""The README's commands themselves: `make run` serves, `make demo` walks through it, SIGTERM stops."""
import shutil
import subprocess

import pytest

from tests.e2e.conftest import ROOT, free_port, http, stack_env, start


@pytest.fixture
def make_run(local_dir, tmp_path):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    running = start(["make", "--no-print-directory", "run"], free_port(), local_dir, tmp_path / "make-run.log")
    yield running
    running.stop()


def test_make_run_then_make_demo(make_run, local_dir):
    assert "POST /pay" in " ".join(http("GET", f"{make_run.url}/health")[1]["routes"])
    port = make_run.url.rsplit(":", 1)[1]
    demo = subprocess.run(
        ["make", "--no-print-directory", "demo"], cwd=ROOT, env=stack_env(int(port), local_dir),
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert '"status": 1' in demo.stdout and "Done" in demo.stdout
    banner = make_run.log.read_text(encoding="utf-8")
    assert f"local stack on {make_run.url}" in banner and "curl -s -X POST" in banner

    make_run.stop()
    assert make_run.process.returncode == 0 and make_run.log_lines("local stack stopped")  # a clean stop
