"""What a cold start imports: nothing heavy that a request does not need (issue 6).

Each handler is imported in a fresh interpreter, as the Lambda runtime does at init. The modules
below cost milliseconds each when compiled from source on Lambda and are needed only on paths
that load them themselves (the gateway, certificate mode, the page form, DynamoDB on first use).
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))
DEFERRED = [
    "cryptography.hazmat.primitives.serialization",  # its SSH support: ciphers, EC, Ed25519
    "cryptography.x509",  # certificate mode only
    "http.client", "ssl",  # the gateway, for calls to Alipay
    "boto3", "botocore",  # imported by the repository when first used
    "html",  # the page/wap form
]
NEEDED = {"pay_return": {"html"}}  # the return page is HTML on every request


@pytest.mark.parametrize("handler", HANDLERS)
def test_importing_a_handler_leaves_heavy_modules_for_later(handler):
    code = f"import sys, json, functions.{handler}.handler; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(out.stdout))
    assert f"functions.{handler}.handler" in loaded and "cryptography" in loaded  # the check sees real imports
    assert [name for name in DEFERRED if name in loaded and name not in NEEDED.get(handler, ())] == []
