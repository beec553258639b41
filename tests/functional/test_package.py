"""`npx serverless package` (osls, pinned in package.json) succeeds offline and ships only our code."""
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {"pay", "pay_notify", "add_order", "pay_return"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    if not (ROOT / "node_modules" / ".bin" / "serverless").exists():
        pytest.skip("node_modules not installed (make test installs it with npm ci)")
    out = tmp_path_factory.mktemp("package")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="offline", AWS_SECRET_ACCESS_KEY="offline", SLS_TELEMETRY_DISABLED="1")
    result = subprocess.run(
        [shutil.which("npx") or "npx", "serverless", "package", "--stage", "ci", "--package", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_each_function_is_packaged_alone_with_only_project_code(packaged):
    for name in FUNCTIONS:
        names = zipfile.ZipFile(packaged / f"{name}.zip").namelist()
        assert f"functions/{name}/handler.py" in names
        assert "shared/signing.py" in names
        others = FUNCTIONS - {name}
        assert not [n for n in names if any(n.startswith(f"functions/{o}/") for o in others)]
        assert not [n for n in names if n.startswith(("tests/", "local/", ".venv/", "node_modules/", "alipay/"))]
        assert (packaged / f"{name}.zip").stat().st_size < 100 * 1024
