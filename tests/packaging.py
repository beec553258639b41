"""`npx serverless package` run as a deployer would, offline: no AWS credentials at all, and the
deployer's environment settings given explicitly (nothing leaks in from the shell running the
tests). The template tests, the package tests and the deploy rehearsal share its output."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGE = "ci"
# Every variable serverless.yml reads with ${env:...}: unset unless a test sets it.
DEPLOYER_SETTINGS = (
    "LAMBDA_ARCH", "API_THROTTLE_RATE", "API_THROTTLE_BURST", "JWT_ISSUER", "JWT_AUDIENCE",
    "PUBLIC_BASE_URL", "ALARM_EMAIL", "ALARM_RECONCILE_BEHIND_SECONDS", "ALARM_REFUND_PENDING_SECONDS",
    "ALARM_NOTIFY_FAIL_PERCENT",
)
# A deployer with a Cognito user pool, a custom domain and x86_64 (README, "Deploy").
CONFIGURED = {
    "LAMBDA_ARCH": "x86_64",
    "API_THROTTLE_RATE": "20",
    "API_THROTTLE_BURST": "40",
    "JWT_ISSUER": "https://cognito-idp.ap-southeast-1.amazonaws.com/ap-southeast-1_AbCdEf123",
    "JWT_AUDIENCE": "4b2pq0sdt6example,7kq1aa9d2uexample",
    "PUBLIC_BASE_URL": "https://pay.example.com",
    "ALARM_EMAIL": "ops@example.com",
}


def deployer_env(settings: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in DEPLOYER_SETTINGS}
    env.update(AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_CONFIG_FILE=os.devnull, SLS_TELEMETRY_DISABLED="1")
    env.update(settings or {})
    return env


def run_package(out: Path, settings: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    if not (ROOT / "node_modules" / ".bin" / "serverless").exists():
        pytest.skip("node_modules not installed (make test installs it with npm ci)")
    return subprocess.run(
        [shutil.which("npx") or "npx", "serverless", "package", "--stage", STAGE, "--package", str(out)],
        cwd=ROOT, env=deployer_env(settings), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )


def package(out: Path, settings: Optional[Dict[str, str]] = None) -> Path:
    result = run_package(out, settings)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not compared with the deployed stack" in result.stdout + result.stderr
    return out


def template(out: Path) -> dict:
    return json.loads((out / "cloudformation-template-update-stack.json").read_text())
