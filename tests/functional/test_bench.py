"""`make bench` runs end to end (quick mode, no packaging). It asserts that the bench works, never a speed."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.oracle  # the bench drives the official SDK


def test_the_bench_runs_and_prints_every_figure_and_ratio():
    result = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--no-package"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for figure in ("sign orderStr: ours", "sign orderStr: official SDK", "verify notify: ours",
                   "sign: the floor (bench/floor.py)", "verify: the floor (bench/floor.py)",
                   "cold start to 1st orderStr: ours, as on Lambda", "cold start to 1st orderStr: SDK, as on Lambda",
                   "boto3: import", "warm pay_notify: outside DynamoDB (ours)", "official SDK installed",
                   "parse pay: a normal request", "parse pay: worst of", "parse add_order: worst of",
                   "parse refund: worst of", "parse pay_notify: worst of", "parse pay_return: worst of"):
        assert figure in out
    assert "equals the official SDK's for the same inputs and timestamp: yes" in out
    ratios = out.split("ratios (goal)", 1)[1]
    for ratio in ("sign: SDK / ours", "cold start: ours / SDK, as on Lambda", "warm notify outside DynamoDB",
                  "worst hostile input, any entry point"):
        assert ratio in ratios
