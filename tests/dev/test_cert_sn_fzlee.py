"""Our certificate SNs against an independent implementation: fzlee's python-alipay-sdk ``DCAliPay``.

It installs a package named ``alipay`` like the official SDK in .venv, so it gets a virtualenv of
its own (.venv-fzlee, from requirements-fzlee.txt), created here on first use; ``make fzlee``
does the same. Skipped only when the package registry cannot be reached.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from local import certs
from shared.alipay import cert

pytestmark = pytest.mark.dev

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-fzlee"
REQUIREMENTS = ROOT / "requirements-fzlee.txt"
STAMP = VENV / ".installed"
UNREACHABLE = ("NewConnectionError", "Network is unreachable", "Temporary failure in name resolution",
               "Failed to establish a new connection", "ConnectTimeoutError", "No route to host")

SCRIPT = r"""
import json, sys, types
from alipay import DCAliPay
files = json.load(sys.stdin)
holder = types.SimpleNamespace(_alipay_public_key_cert_string=files["alipay"])
print(json.dumps({
    "app_cert_sn": DCAliPay.get_cert_sn(files["app"]),
    "alipay_cert_sn": DCAliPay.get_cert_sn(files["alipay"]),
    "alipay_root_cert_sn": DCAliPay.get_root_cert_sn(files["root"]),
    "alipay_public_key": DCAliPay.load_alipay_public_key_string(holder),
}))
"""


def python() -> Path:
    return VENV / "bin" / "python"


@pytest.fixture(scope="module")
def fzlee() -> Path:
    if STAMP.exists() and STAMP.read_text() == REQUIREMENTS.read_text():
        return python()
    venv.create(VENV, with_pip=True, clear=True)
    proc = subprocess.run(
        [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        if any(marker in output for marker in UNREACHABLE):
            pytest.skip("package registry unreachable: cannot install python-alipay-sdk into .venv-fzlee")
        pytest.fail(f"installing requirements-fzlee.txt failed:\n{output[-2000:]}")
    STAMP.write_text(REQUIREMENTS.read_text())
    return python()


def theirs(fzlee: Path, files: certs.CertFiles) -> dict:
    payload = json.dumps({"app": files.app_cert, "alipay": files.alipay_cert, "root": files.root_cert})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(fzlee), "-c", SCRIPT], input=payload, capture_output=True, text=True, env=env, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("round_", range(3))
def test_sns_equal_dcalipays(fzlee, app_keys, alipay_keys, round_):
    files = certs.CertFiles.generate(app_keys.private_key, alipay_keys.private_key)  # fresh serials each round
    other = theirs(fzlee, files)
    assert other["app_cert_sn"] == cert.app_cert_sn(files.app_cert, app_keys.private_key)
    assert other["alipay_cert_sn"] == cert.alipay_cert(files.alipay_cert).sn
    assert other["alipay_root_cert_sn"] == cert.alipay_root_cert_sn(files.root_cert)
    assert other["alipay_root_cert_sn"].count("_") == 1  # the ECDSA (SM2 stand-in) root left out by both
    assert other["alipay_public_key"].strip() == alipay_keys.public_pem().strip()


def test_the_fzlee_sdk_is_not_in_the_main_venv():
    """Both packages are called ``alipay``: the one importable here must be the official SDK."""
    import alipay

    assert (Path(alipay.__file__).parent / "aop").is_dir()
    assert Path(sys.prefix).resolve() != VENV.resolve()
